"""An experiment that remembers how it was made: RESULTS/NAME/experiment.json records, at its
first stage, the preset, the data folder and the env it was made with. Later commands on the
same ``--name`` take them from there, so a command without ``--preset`` runs the experiment's
own preset (not the default), and a conflicting ``--preset`` is a one-line error."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from worldmodels.core.artifacts import VERSION, read_json, write_json, writing
from worldmodels.errors import WorldModelsError

RECORD = "experiment.json"
DEFAULT_PRESET = "small"
DEFAULT_DATA_DIR = "data"


@dataclass(frozen=True)
class Record:
    """How an experiment was made."""

    preset: str
    """The preset its first stage ran with (or the last --force that changed it)."""
    data_dir: str
    """Where its rollouts and series live (DATA in DATA/NAME)."""
    env_id: str
    """The env its preset collects in."""
    created: str = ""
    version: str = VERSION


def read_record(experiment: Path) -> Record | None:
    """The record of the experiment folder ``experiment``; None when it has none. A damaged or
    foreign record is a one-line error."""
    from worldmodels.config import PRESET_NAMES

    path = Path(experiment) / RECORD
    if not path.exists():
        return None
    payload = read_json(path, f"delete {path} and re-run with --preset")
    fields = ("preset", "data_dir", "env_id")
    if not isinstance(payload, dict) or not all(isinstance(payload.get(k), str) and
                                                len(payload[k]) < 4096 for k in fields) \
            or payload["preset"] not in PRESET_NAMES:
        raise WorldModelsError(f"{path} is not an experiment record of this suite: delete it "
                               "and re-run with --preset")
    return Record(*(payload[k] for k in fields), str(payload.get("created", "")),
                  str(payload.get("version", "")))


def resolve_experiment(experiment: Path, preset: str | None, data_dir: Path | None,
                       force: bool) -> tuple[str, Path, bool]:
    """The preset and data folder a command on ``experiment`` runs with: those given, else the
    record's, else the defaults; and whether the record is to be (re)written once the command
    has run (no record yet, or ``force`` changed the preset). A ``preset`` that differs from
    the record's is refused unless ``force``. A ``data_dir`` given explicitly is used as it is
    (an experiment copied elsewhere), without changing the record."""
    record = read_record(experiment)
    if record is None:
        return preset or DEFAULT_PRESET, Path(data_dir or DEFAULT_DATA_DIR), True
    if preset is not None and preset != record.preset and not force:
        raise WorldModelsError(
            f"{experiment} was made with the {record.preset} preset: drop --preset {preset} "
            f"(or give --preset {record.preset}), use a new --name, or add --force to remake "
            "this stage with the new preset")
    return (preset or record.preset, Path(data_dir or record.data_dir),
            (preset or record.preset) != record.preset)


def write_record(experiment: Path, preset: str, data_dir: Path, env_id: str) -> Path:
    """Record how ``experiment`` is made (atomically)."""
    path = Path(experiment) / RECORD
    with writing(path):
        Path(experiment).mkdir(parents=True, exist_ok=True)
    write_json(path, asdict(Record(preset, str(data_dir), env_id,
                                   time.strftime("%Y-%m-%dT%H:%M:%S"))))
    return path


@contextmanager
def recording(experiment: Path, preset: str, data_dir: Path, env_id: str):
    """The record written before a command's work starts, so that while it runs, and after it
    is killed (even by kill -9), later commands on the experiment run its preset; taken back
    (the previous record restored, or none and no empty folder left) when the command is
    refused before any work (WorldModelsError)."""
    experiment = Path(experiment)
    path = experiment / RECORD
    before = read_json(path) if path.exists() else None
    made = not experiment.exists()
    write_record(experiment, preset, data_dir, env_id)
    try:
        yield path
    except WorldModelsError:
        if before is not None:
            write_json(path, before)
        else:
            path.unlink(missing_ok=True)
            if made and not any(experiment.iterdir()):
                experiment.rmdir()
        raise
