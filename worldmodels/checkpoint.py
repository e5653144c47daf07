"""Training checkpoints: model weights, optimizer state and progress, swapped in atomically.

A checkpoint is a folder ``checkpoint/`` holding ``model.weights.h5``, ``optimizer.npz`` and
``progress.json`` (written last). A new one is written to ``checkpoint.tmp/`` and swapped in by
renames, so a kill at any moment leaves either the old or the new checkpoint whole.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from worldmodels.errors import WorldModelsError

NAME = "checkpoint"


def save(directory: Path, model, optimizer, progress: dict) -> None:
    """Write a checkpoint of ``model``, ``optimizer`` and ``progress`` into ``directory``."""
    directory = Path(directory)
    tmp, final, old = directory / f"{NAME}.tmp", directory / NAME, directory / f"{NAME}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_weights(tmp / "model.weights.h5")
    variables = {f"v{i}": v.numpy() for i, v in enumerate(optimizer.variables)}
    np.savez(tmp / "optimizer.npz", **variables)
    (tmp / "progress.json").write_text(json.dumps(progress, default=float))
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load(directory: Path, model, optimizer) -> dict | None:
    """Restore the latest whole checkpoint into ``model`` and ``optimizer``; returns its progress,
    or None when there is none."""
    directory = Path(directory)
    for name in (NAME, f"{NAME}.old"):
        folder = directory / name
        if (folder / "progress.json").exists():
            model.load_weights(folder / "model.weights.h5")
            optimizer.build(model.trainable_variables)
            saved = np.load(folder / "optimizer.npz")
            assert len(saved.files) == len(optimizer.variables), (
                f"optimizer state has {len(saved.files)} variables, expected "
                f"{len(optimizer.variables)}"
            )
            for i, variable in enumerate(optimizer.variables):
                variable.assign(saved[f"v{i}"])
            return json.loads((folder / "progress.json").read_text())
    return None


def clear(directory: Path) -> None:
    """Remove every checkpoint of ``directory`` (for --force)."""
    for name in (NAME, f"{NAME}.tmp", f"{NAME}.old"):
        shutil.rmtree(Path(directory) / name, ignore_errors=True)


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
