"""Training checkpoints: model weights, optimizer state and progress, swapped in atomically.

A checkpoint is a folder ``checkpoint/`` holding ``model.weights.h5``, ``optimizer.npz`` and
``progress.json`` (written last). A new one is written to a fresh ``checkpoint.tmpXXXX/``
(``mkdtemp``: unique, never a link) and swapped in by renames, so a kill at any moment leaves
either the old or the new checkpoint whole.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from worldmodels.core.artifacts import atomic_path, refuse_link, writing
from worldmodels.errors import WorldModelsError

NAME = "checkpoint"
DAMAGE = (OSError, KeyError, ValueError, WorldModelsError)
"""What reading a damaged or foreign file raises (h5py's and Keras's errors are OSError,
KeyError or ValueError): turned into "damaged ... --force"; any other is a bug in our code and
keeps its traceback."""


def save_weights(model, path: Path) -> None:
    """Save a model's weights atomically; a failed write is a one-line error."""
    with atomic_path(path) as tmp:
        model.save_weights(tmp)


def load_weights(model, path: Path, command: str) -> None:
    """Load saved weights into ``model``; weights that are missing, damaged, of another shape
    or not finite (NaN, inf) are a one-line error naming the file and the command that writes
    them again."""
    try:
        model.load_weights(Path(path))
        check_finite_weights(model)
    except DAMAGE as error:
        raise WorldModelsError(
            f"cannot load the weights {path} ({_reason(error)}): re-run "
            f"`worldmodels {command} --force`") from None




def check_finite_weights(model) -> None:
    """A ValueError naming the first variable of ``model`` holding NaN or inf."""
    for variable in model.weights:
        if not np.all(np.isfinite(np.asarray(variable))):
            raise ValueError(f"{variable.path} holds NaN or inf")


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text[:120] if text else type(error).__name__


def save(directory: Path, model, optimizer, progress: dict) -> None:
    """Write a checkpoint of ``model``, ``optimizer`` and ``progress`` into ``directory``: into a
    fresh folder (``mkdtemp``, never a link), then swapped in by renames."""
    import tempfile

    directory = Path(directory)
    final, old = refuse_link(directory / NAME), refuse_link(directory / f"{NAME}.old")
    with writing(final):
        tmp = Path(tempfile.mkdtemp(prefix=f"{NAME}.tmp", dir=directory))
        try:
            model.save_weights(tmp / "model.weights.h5")
            variables = {f"v{i}": v.numpy() for i, v in enumerate(optimizer.variables)}
            np.savez(tmp / "optimizer.npz", **variables)
            (tmp / "progress.json").write_text(json.dumps(progress, default=float))
            shutil.rmtree(old, ignore_errors=True)
            if final.exists():
                final.rename(old)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def load(directory: Path, model, optimizer) -> dict | None:
    """Restore the latest whole checkpoint into ``model`` and ``optimizer``; returns its progress,
    or None when there is none. A damaged checkpoint is a one-line error."""
    directory = Path(directory)
    for name in (NAME, f"{NAME}.old"):
        folder = refuse_link(directory / name)
        if (folder / "progress.json").exists():
            try:
                return _restore(folder, model, optimizer)
            except DAMAGE as error:  # a damaged or foreign file; a bug keeps its traceback
                raise WorldModelsError(
                    f"the checkpoint {folder} is damaged ({_reason(error)}): add --force to "
                    "start the training over") from None
    return None


def _restore(folder: Path, model, optimizer) -> dict:
    model.load_weights(folder / "model.weights.h5")
    check_finite_weights(model)
    optimizer.build(model.trainable_variables)
    with np.load(folder / "optimizer.npz", allow_pickle=False) as saved:
        if len(saved.files) != len(optimizer.variables):
            raise ValueError(f"optimizer state has {len(saved.files)} variables, expected "
                             f"{len(optimizer.variables)}")
        for i, variable in enumerate(optimizer.variables):
            if saved[f"v{i}"].shape != tuple(variable.shape):
                raise ValueError(f"optimizer variable {i} of shape {saved[f'v{i}'].shape}")
            if not np.all(np.isfinite(saved[f"v{i}"])):
                raise ValueError(f"optimizer variable {i} holds NaN or inf")
            variable.assign(saved[f"v{i}"])
    progress = json.loads((folder / "progress.json").read_text())
    if not isinstance(progress, dict) or not {"epoch", "history"} <= set(progress):
        raise ValueError("progress.json lacks epoch or history")
    return progress


def clear(directory: Path) -> None:
    """Remove every checkpoint of ``directory`` (for --force; call it holding the stage's
    lock)."""
    directory = Path(directory)
    for path in (directory / NAME, directory / f"{NAME}.old", *directory.glob(f"{NAME}.tmp*")):
        if path.is_symlink():
            path.unlink()  # the link only, never what it points to
        else:
            shutil.rmtree(path, ignore_errors=True)


def new_progress() -> dict:
    """The progress of a training run that has not started."""
    return {"epoch": 0, "step": 0, "sums": {}, "count": 0, "history": []}


def check_finite(losses: dict, epoch: int, step: int, directory: Path) -> None:
    """Stop training on a NaN or inf loss, naming the step and the term (the named terms
    before their total)."""
    terms = [term for term in losses if term != "loss"] + ["loss"]
    for term in terms:
        value = losses.get(term)
        if value is not None and not np.isfinite(value):
            folder = Path(directory) / NAME
            kept = (f"the last good checkpoint is kept in {folder}" if folder.exists()
                    else "no checkpoint had been written yet")
            name = "total loss" if term == "loss" else f"{term} loss"
            raise WorldModelsError(
                f"non-finite {name} ({value}) at epoch {epoch}, step {step}: training stopped; "
                f"{kept}"
            )
