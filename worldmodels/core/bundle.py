"""An agent that travels: V, M and C of an experiment, their manifests and the dream's start
data packed into one tar file with a checksum of every member, and opened again anywhere.

A bundle is input like any other: it is never unpickled and no code runs from it; every
member must be a plain file under the bundle's root, listed with its size and SHA-256 in
``bundle.json``, and no larger than ``MAX_BYTES`` in all."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from worldmodels.config import CONTROLLER_VARIANTS, ensemble_size
from worldmodels.core.artifacts import Layout, require_manifest
from worldmodels.errors import WorldModelsError

NAME = "agent"  # the experiment name inside a bundle
INDEX = "bundle.json"
MAX_BYTES = 4 * 2**30  # a bundle's members in all; the paper's V, M and series fit well inside
FORMAT = 1


def members(layout: Layout, trained_in: str = "dream", variant: str = "zh") -> dict[str, Path]:
    """Bundle path -> file of the experiment: V, M, C's parameters, their manifests, and the
    series and rollouts manifests that say the env and where dreams start."""
    controller = layout.controller(trained_in, variant)
    require_manifest(controller, f"controller trained in the {trained_in}",
                     f"train-controller --where {trained_in} --variant {variant}")
    wanted = {
        layout.vae: ("vae.weights.h5", "manifest.json"),
        layout.rnn: ("rnn.weights.h5", "manifest.json"),
        controller: ("manifest.json", "best.npy", "mean.npy", "selected.npy", "selection.json"),
        layout.rollouts: ("manifest.json",),
        layout.series_dir: (layout.series.name, "manifest.json"),
    }
    ensemble = ensemble_size(require_manifest(layout.rnn, "trained M", "train-rnn"), layout.rnn)
    for member in range(1, ensemble):
        wanted[layout.rnn_member(member)] = ("rnn.weights.h5",)
    found = {}
    for directory, names in wanted.items():
        root = "data" if directory in (layout.rollouts, layout.series_dir) else "results"
        base = layout.data_dir if root == "data" else layout.results_dir
        relative = Path(directory).relative_to(Path(base) / layout.name)
        for name in names:
            if (Path(directory) / name).is_file():
                found[f"{root}/{NAME}/{relative.as_posix()}/{name}"] = Path(directory) / name
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_agent(layout: Layout, out: Path, trained_in: str = "dream",
                 variant: str = "zh") -> Path:
    """Write the bundle ``out`` (a tar file) of the experiment's trained agent; returns it."""
    files = members(layout, trained_in, variant)
    index = {"format": FORMAT, "experiment": layout.name, "trained_in": trained_in,
             "variant": variant, "files": {name: {"bytes": path.stat().st_size,
                                                  "sha256": _sha256(path)}
                                           for name, path in sorted(files.items())}}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    with tarfile.open(tmp, "w") as tar:
        payload = json.dumps(index, indent=1).encode()
        info = tarfile.TarInfo(INDEX)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
        for name, path in sorted(files.items()):
            tar.add(path, arcname=name, recursive=False)
    os.replace(tmp, out)
    return out


def is_bundle(path) -> bool:
    """Whether ``path`` names a bundle file (rather than an experiment name)."""
    return isinstance(path, (str, os.PathLike)) and Path(path).is_file() and \
        tarfile.is_tarfile(path)


def _safe(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and \
        "\\" not in name


def open_bundle(path: Path, into: Path | None = None) -> tuple[Path, dict]:
    """Check and unpack the bundle ``path`` into ``into`` (a new temporary folder by default);
    returns the folder (holding data/ and results/ of the experiment ``NAME``) and the index.
    Anything but plain files at safe relative paths, listed in the index with their size and
    checksum, is a one-line error before anything is written."""
    path = Path(path)
    try:
        tar = tarfile.open(path, "r")
    except (OSError, tarfile.TarError) as error:
        raise WorldModelsError(f"{path} is not an agent bundle ({error})") from None
    with tar:
        entries = tar.getmembers()
        names = [entry.name for entry in entries]
        bad = [e.name for e in entries if not e.isfile() or not _safe(e.name)]
        if bad or len(set(names)) != len(names):
            raise WorldModelsError(f"{path}: refused, members that are not plain files at "
                                   f"safe paths or repeated: {bad[:3] or 'duplicates'}")
        if sum(entry.size for entry in entries) > MAX_BYTES:
            raise WorldModelsError(f"{path}: refused, larger than {MAX_BYTES:,} bytes")
        if INDEX not in names or tar.getmember(INDEX).size > 2**20:
            raise WorldModelsError(f"{path}: no {INDEX}; not a bundle of `worldmodels export`")
        try:
            index = json.loads(tar.extractfile(INDEX).read())
            listed = index["files"]
        except (ValueError, KeyError, TypeError):
            raise WorldModelsError(f"{path}: {INDEX} is not a bundle index") from None
        if index.get("format") != FORMAT or set(listed) != set(names) - {INDEX} or any(
                not name.startswith(("data/" + NAME + "/", "results/" + NAME + "/"))
                for name in listed) or index.get("trained_in") not in ("dream", "real") \
                or index.get("variant") not in CONTROLLER_VARIANTS:
            raise WorldModelsError(f"{path}: its members do not match {INDEX}")
        root = Path(into) if into else Path(tempfile.mkdtemp(prefix="worldmodels-agent-"))
        try:
            _extract(tar, entries, listed, root, path)
        except BaseException:
            if into is None:  # nothing of a refused bundle is kept
                shutil.rmtree(root, ignore_errors=True)
            raise
    return root, index


@contextmanager
def opened(path: Path):
    """The bundle ``path`` checked and unpacked (``open_bundle``) into a temporary folder that
    is removed when the block ends, however it ends: yields (folder, index)."""
    root, index = open_bundle(path)
    try:
        yield root, index
    finally:
        shutil.rmtree(root, ignore_errors=True)


def default_name(path: Path) -> str:
    """The experiment name a bundle's scores go under without --name: its file name without
    the extension (agent.tar -> agent)."""
    name = Path(path).name
    return name[: -len(".tar")] if name.endswith(".tar") else Path(name).stem or name


@contextmanager
def agent_layout(path: Path, outputs: Layout):
    """The experiment of the bundle ``path``, unpacked for the block (``opened``), whose scores
    and videos go to the experiment folder of ``outputs`` (RESULTS/NAME) instead: yields
    (layout, index). A folder holding an experiment of its own (a trained V) is refused: its
    scores are not to be mixed with another agent's."""
    target = outputs.experiment
    if (target / "vae" / "manifest.json").exists():
        raise WorldModelsError(f"{target} is an experiment of its own: give the agent's scores "
                               "another --name")
    with opened(path) as (root, index):
        yield Layout(root / "data", root / "results", NAME, outputs=target,
                     agent=str(Path(path).resolve())), index


def _extract(tar, entries, listed: dict, root: Path, path: Path) -> None:
    """Write each checked member under ``root``, verifying its size and checksum."""
    for entry in entries:
        if entry.name == INDEX:
            continue
        expected = listed[entry.name]
        target = root / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size, source = hashlib.sha256(), 0, tar.extractfile(entry)
        with open(target, "wb") as file:  # streamed: memory does not grow with V or M
            for block in iter(functools.partial(source.read, 2**20), b""):
                digest.update(block)
                size += len(block)
                file.write(block)
        if size != expected["bytes"] or digest.hexdigest() != expected["sha256"]:
            target.unlink()
            raise WorldModelsError(f"{path}: {entry.name} fails its checksum")
