"""Where every stage reads and writes, and the provenance written next to each output.

Layout for an experiment NAME:

    DATA/NAME/rollouts/episode_00000.h5   one HDF5 file per collected episode
    DATA/NAME/rollouts/manifest.json      collect's provenance
    DATA/NAME/series/series.h5            mu/logvar of every frame, made by `encode`
    RESULTS/NAME/vae/                     V: weights, manifest, metrics.csv, reconstructions.png
    RESULTS/NAME/rnn/                     M: weights, manifest, metrics.csv
    RESULTS/NAME/controller-dream/        C trained in the dream: best.npy, mean.npy, history.csv
    RESULTS/NAME/controller-real/         C trained in the real env
    RESULTS/NAME/evaluate/                one JSON of scores per evaluation
    RESULTS/NAME/pipeline.json            wall time of each stage of `pipeline`

Every stage writes ``manifest.json`` (config, seed, package version, the run ids of its inputs,
status) before work starts and marks it ``complete`` at the end, so later stages can refuse
inputs that are missing, unfinished or made for other sizes.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from worldmodels.errors import WorldModelsError

VERSION = "0.1.0"


@dataclass(frozen=True)
class Layout:
    """Paths of one experiment."""

    data_dir: Path
    results_dir: Path
    name: str

    @property
    def rollouts(self) -> Path:
        return Path(self.data_dir) / self.name / "rollouts"

    @property
    def series_dir(self) -> Path:
        return Path(self.data_dir) / self.name / "series"

    @property
    def series(self) -> Path:
        return self.series_dir / "series.h5"

    @property
    def experiment(self) -> Path:
        return Path(self.results_dir) / self.name

    @property
    def vae(self) -> Path:
        return self.experiment / "vae"

    @property
    def rnn(self) -> Path:
        return self.experiment / "rnn"

    def controller(self, where: str) -> Path:
        return self.experiment / f"controller-{where}"

    @property
    def evaluations(self) -> Path:
        return self.experiment / "evaluate"


def write_json(path: Path, payload: dict) -> None:
    """Write JSON atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def start_manifest(directory: Path, stage: str, config: dict, seed: int, inputs: dict) -> dict:
    """Write the provenance of a stage about to run; returns the manifest."""
    manifest = {
        "stage": stage,
        "run_id": uuid.uuid4().hex[:12],
        "version": VERSION,
        "seed": seed,
        "config": config,
        "inputs": inputs,
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(Path(directory) / "manifest.json", manifest)
    return manifest


def finish_manifest(directory: Path, manifest: dict, **summary) -> dict:
    """Mark a stage complete, recording its summary figures."""
    manifest = dict(manifest, status="complete", summary=summary)
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(Path(directory) / "manifest.json", manifest)
    return manifest


def require_manifest(directory: Path, what: str, command: str) -> dict:
    """The complete manifest of an upstream stage, or a one-line error naming the command."""
    path = Path(directory) / "manifest.json"
    if not path.exists():
        raise WorldModelsError(f"no {what} at {directory}: run `worldmodels {command}` first")
    manifest = read_json(path)
    if manifest.get("status") != "complete":
        raise WorldModelsError(
            f"{what} at {directory} is unfinished: re-run `worldmodels {command}`"
        )
    return manifest
