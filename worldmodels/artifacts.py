"""Where every stage reads and writes, and the provenance written next to each output.

Layout for an experiment NAME:

    DATA/NAME/rollouts/episode_00000.h5   one HDF5 file per collected episode
    DATA/NAME/rollouts/manifest.json      collect's provenance
    DATA/NAME/series/series.h5            mu/logvar of every frame, made by `encode`
    RESULTS/NAME/vae/                     V: weights, manifest, metrics.csv, reconstructions.png
    RESULTS/NAME/rnn/                     M: weights, manifest, metrics.csv
    RESULTS/NAME/controller-dream/        C trained in the dream: best.npy, mean.npy, history.csv
    RESULTS/NAME/controller-real/         C trained in the real env
    RESULTS/NAME/controller-WHERE-z/      the V-only variants (z, z-hidden) of C
    RESULTS/NAME/evaluate/                one JSON of scores per evaluation
    RESULTS/NAME/pipeline.json            wall time of each stage of `pipeline`
    RESULTS/NAME/iterate/                 rounds.json/csv of `iterate`; round-N/ keeps round N's
                                          M (rnn/) and C (controller-dream/) and its evaluate/

Every stage writes ``manifest.json`` (config, seed, package version, the run ids of its inputs,
status) before work starts and marks it ``complete`` at the end, so later stages can refuse
inputs that are missing, unfinished or made for other sizes.
"""

from __future__ import annotations

import csv
import json
import os
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from worldmodels.errors import WorldModelsError

VERSION = "0.1.0"


def variant_suffix(variant: str) -> str:
    """How a controller variant shows in file names: nothing for zh, -z, -z-hidden."""
    return "" if variant == "zh" else f"-{variant}"


@dataclass(frozen=True)
class Layout:
    """Paths of one experiment."""

    data_dir: Path
    results_dir: Path
    name: str
    round: int = 0
    """0: the experiment's own M and C; N: the copies `iterate` kept after its round N."""

    def at_round(self, round_number: int) -> Layout:
        """The same experiment, its M and C as `iterate` kept them after ``round_number``."""
        return replace(self, round=round_number)

    @property
    def runs(self) -> Path:
        """Where M, C and their evaluations are: the experiment, or a round's copy of them."""
        return self.experiment / "iterate" / f"round-{self.round}" if self.round else \
            self.experiment

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
        return self.runs / "rnn"

    def controller(self, where: str, variant: str = "zh") -> Path:
        """controller-WHERE for the full [z, h] controller, controller-WHERE-VARIANT for the
        others."""
        return self.runs / f"controller-{where}{variant_suffix(variant)}"

    def evaluation(self, where: str, trained_in: str, variant: str, params: str,
                   noise: float = 0.0) -> Path:
        """evaluate's scores: WHERE-TRAINED_IN[-VARIANT]-PARAMS[-noiseSTD].json."""
        suffix = f"-noise{noise:g}" if noise else ""
        return self.evaluations / (f"{where}-{trained_in}{variant_suffix(variant)}-{params}"
                                   f"{suffix}.json")

    @property
    def evaluations(self) -> Path:
        return self.runs / "evaluate"


def write_json(path: Path, payload: dict) -> None:
    """Write JSON atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write rows of dicts as CSV atomically (per-epoch metrics, per-generation history)."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def _normalise(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _comparable(config) -> dict:
    """A config without the fields that do not change results (worker counts)."""
    config = dict(_normalise(config or {}))
    config.pop("workers", None)
    return config


def ensure_writable(directory: Path) -> None:
    """Create ``directory`` and check a file can be written there, before any long work."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise WorldModelsError(f"cannot write to {directory}: {reason}") from None


def begin_stage(directory: Path, stage: str, config: dict, seed: int, inputs: dict,
                force: bool = False):
    """Start, resume or skip a stage. Returns (manifest, state) with state "new", "resumed" or
    "complete" (then nothing is to be done). An unfinished run is resumed only with the same
    config, seed and inputs; ``force`` starts over."""
    ensure_writable(directory)
    path = Path(directory) / "manifest.json"
    if path.exists() and not force:
        old = read_json(path)
        same = (_comparable(old.get("config")) == _comparable(config)
                and old.get("seed") == seed and old.get("inputs") == _normalise(inputs))
        if old.get("status") == "complete":
            return old, "complete"
        if not same:
            raise WorldModelsError(
                f"{directory} holds an unfinished {stage} run with another config, seed or "
                "inputs: re-run the same command to resume it, or add --force to start over"
            )
        old["resumes"] = old.get("resumes", 0) + 1
        write_json(path, old)
        return old, "resumed"
    return start_manifest(directory, stage, config, seed, inputs), "new"


def code_commit() -> str | None:
    """The git commit of the checkout this package runs from ("+changes" when it has
    uncommitted changes), or None outside a git checkout."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no", "--", "worldmodels"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return commit.stdout.strip() + ("+changes" if dirty else "")


def start_manifest(directory: Path, stage: str, config: dict, seed: int, inputs: dict) -> dict:
    """Write the provenance of a stage about to run; returns the manifest."""
    manifest = {
        "stage": stage,
        "run_id": uuid.uuid4().hex[:12],
        "version": VERSION,
        "seed": seed,
        "config": _normalise(config),
        "inputs": _normalise(inputs),
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(Path(directory) / "manifest.json", manifest)
    return manifest


def finish_manifest(directory: Path, manifest: dict, **summary) -> dict:
    """Mark a stage complete, recording its summary figures and, when it ran a model in this
    process, the device TensorFlow computed on ("CPU" or "GPU:0 <name>")."""
    from worldmodels.device import loaded_device_name

    manifest = dict(manifest, status="complete", summary=summary)
    if (device := loaded_device_name()) is not None:
        manifest["device"] = device
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
