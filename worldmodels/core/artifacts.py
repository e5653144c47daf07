"""Where every stage reads and writes, and the provenance written next to each output.

Layout for an experiment NAME:

    DATA/NAME/rollouts/episode_00000.h5   one HDF5 file per collected episode
    DATA/NAME/rollouts/manifest.json      collect's provenance
    DATA/NAME/series/series.h5            mu/logvar of every frame, made by `encode`
    RESULTS/NAME/vae/                     V: weights, manifest, metrics.csv, reconstructions.png
    RESULTS/NAME/rnn/                     M: weights, manifest, metrics.csv
    RESULTS/NAME/controller-dream/        C trained in the dream: best.npy, mean.npy, history.csv
    RESULTS/NAME/controller-real/         C trained in the real env
    RESULTS/NAME/controller-WHERE-z/      the other variants (zhc, z, z-hidden) of C
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
import re
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from worldmodels.errors import WorldModelsError

VERSION = "0.1.0"
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PLAIN_NAME_RULE = ("1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit")
MAX_JSON_BYTES = 64_000_000
"""The largest JSON state file read (a manifest or a score file takes kB)."""
MANIFEST_KEYS = {"run_id": str, "status": str, "config": dict, "inputs": dict}


def check_plain(value: str, what: str) -> str:
    """``value`` if it is a plain file name (it cannot leave the folder it is joined to), else
    a one-line error saying which characters are allowed."""
    if not isinstance(value, str) or not PLAIN_NAME.fullmatch(value):
        raise WorldModelsError(f"{what} {value!r} is not a plain name: use {PLAIN_NAME_RULE}")
    return value


def variant_suffix(variant: str) -> str:
    """How a controller variant shows in file names: nothing for zh, -zhc, -z, -z-hidden."""
    return "" if variant == "zh" else f"-{variant}"


@dataclass(frozen=True)
class Layout:
    """Paths of one experiment."""

    data_dir: Path
    results_dir: Path
    name: str
    round: int = 0
    """0: the experiment's own M and C; N: the copies `iterate` kept after its round N."""
    temperature: float | None = None
    """None: the experiment's own C; T: the C that `worldmodels temperatures` trained in the
    dream at temperature T (the paper's table), with its evaluations."""
    outputs: Path | None = None
    """None: scores and videos go in the experiment; a folder: they go there instead (an agent
    run from the bundle of `worldmodels export`, unpacked elsewhere: RESULTS/NAME)."""
    agent: str | None = None
    """The bundle file an agent was unpacked from (`--agent`): what its results name as their
    controller, rather than the temporary folder it ran from."""

    def __post_init__(self):
        # Checked before anything is written or deleted: every path below stays in its root.
        check_plain(self.name, "the experiment name (--name)")
        if isinstance(self.round, bool) or not isinstance(self.round, int) or self.round < 0:
            raise WorldModelsError(f"a round must be a whole number >= 0, got {self.round!r}")

    def at_round(self, round_number: int) -> Layout:
        """The same experiment, its M and C as `iterate` kept them after ``round_number``."""
        return replace(self, round=round_number)

    def in_results(self, results_dir) -> Layout:
        """The experiment of the same name and data under another results root (its own M and
        C, not a round's, a temperature's or a bundle's): a judge for ``evaluate --judge``."""
        return replace(self, results_dir=Path(results_dir), round=0, temperature=None,
                       outputs=None, agent=None)

    def at_temperature(self, temperature: float | None) -> Layout:
        """The same experiment's V and M, and the C trained at ``temperature`` for the
        temperature table (None: the experiment's own C)."""
        return replace(self, temperature=temperature)

    @property
    def controllers(self) -> Path:
        """Where C and its evaluations are: ``runs``, or runs/temperatures/tau-T for the C of
        the temperature table trained at T."""
        if self.temperature is None:
            return self.runs
        return self.runs / "temperatures" / check_plain(f"tau-{self.temperature:g}",
                                                        "a temperature folder")

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

    def rnn_member(self, member: int) -> Path:
        """Where member ``member`` of an ensemble of Ms is (``RnnConfig.members``): M itself
        for 0, rnn/member-K for the others."""
        return self.rnn if member == 0 else self.rnn / f"member-{int(member)}"

    def controller(self, where: str, variant: str = "zh") -> Path:
        """controller-WHERE for the full [z, h] controller, controller-WHERE-VARIANT for the
        others."""
        return self.controllers / check_plain(f"controller-{where}{variant_suffix(variant)}",
                                       "a controller folder")

    def evaluation(self, where: str, trained_in: str, variant: str, params: str,
                   noise: float = 0.0, judge: str | None = None,
                   seed: int | None = None) -> Path:
        """evaluate's scores:
        WHERE-TRAINED_IN[-VARIANT]-PARAMS[-noiseSTD][-judge-RUNID][-seedN].json (``judge``: the
        run id of the M that dreamt C, when not its own; ``seed``: the episodes' seed, when not
        the one C was trained with, so that a validation beside the run's own figure leaves it
        alone)."""
        suffix = ((f"-noise{noise:g}" if noise else "") + (f"-judge-{judge}" if judge else "")
                  + (f"-seed{seed}" if seed is not None else ""))
        name = f"{where}-{trained_in}{variant_suffix(variant)}-{params}{suffix}.json"
        return self.evaluations / check_plain(name, "an evaluation file")

    @property
    def evaluations(self) -> Path:
        return (Path(self.outputs) if self.outputs else self.controllers) / "evaluate"

    def controller_name(self, directory: Path) -> str:
        """How results name the controller in ``directory``: its folder, or the bundle file
        it was unpacked from."""
        return self.agent or str(directory)


@contextmanager
def writing(path: Path, tmp: Path | None = None):
    """Turn a failed write of ``path`` (disk full, permission lost) into a one-line error,
    removing the temporary file ``tmp``; the run resumes once the cause is fixed."""
    try:
        yield
    except OSError as error:
        if tmp is not None:
            try:
                Path(tmp).unlink(missing_ok=True)
            except OSError:
                pass
        reason = error.strerror or type(error).__name__
        raise WorldModelsError(f"cannot write {path}: {reason}: free some space or fix the "
                               "permissions, then re-run the same command to resume") from None


def refuse_link(path: Path) -> Path:
    """``path``, or a one-line error when a symbolic link stands at that name: nothing is ever
    written through one (a planted link would redirect the write to the file it points to)."""
    if os.path.islink(path):
        raise WorldModelsError(f"{path} is a symbolic link: remove it, then re-run")
    return Path(path)


def temporary_suffix(path: Path) -> str:
    """The ending a writer that picks its format by name needs (Keras, matplotlib, imageio,
    NumPy): '.weights.h5' for Keras weights, else the file's own suffix."""
    name = Path(path).name
    return ".weights.h5" if name.endswith(".weights.h5") else Path(path).suffix


@contextmanager
def atomic_path(path: Path, suffix: str | None = None):
    """The one way a file is written: yields a fresh temporary path next to ``path`` (made by
    ``mkstemp``: unique to this process and call, never a link) for any writer that takes a
    file name, then renames it over ``path``. A link at ``path`` is refused before and after
    (the rename would replace the link, never write through it); a failed write is a one-line
    error (``writing``) and leaves no temporary file behind."""
    path = refuse_link(path)
    suffix = temporary_suffix(path) if suffix is None else suffix
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.tmp", suffix=suffix,
                                            dir=path.parent)
        try:  # mkstemp makes it 0600: the file gets the mode a plain open would give it
            os.fchmod(descriptor, 0o666 & ~_umask())
        finally:
            os.close(descriptor)
    tmp = Path(name)
    try:
        with writing(path, tmp):
            yield tmp
            refuse_link(path)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def nofollow(path, flags: int) -> int:
    """An ``opener`` for ``open`` that never follows a link at ``path`` (for the temporary
    names of ``atomic_path``, which a neighbour could swap for one)."""
    return os.open(path, flags | os.O_NOFOLLOW, 0o666)


def _umask() -> int:
    """This process's umask (read without changing it where Linux tells it)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> Path:
    """Write text atomically through ``atomic_path``; returns ``path``."""
    with atomic_path(path, "") as tmp, open(tmp, "w", encoding="utf-8", opener=nofollow) as file:
        file.write(text)
    return Path(path)


def copy_file(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` atomically through ``atomic_path``; returns ``target``."""
    import shutil

    with atomic_path(target, "") as tmp:
        shutil.copy2(source, tmp)
    return Path(target)


def write_json(path: Path, payload: dict) -> None:
    """Write JSON atomically (temporary name, then rename)."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: Path, rows: list[dict]) -> None:
    """Write rows of dicts as CSV atomically (per-epoch metrics, per-generation history)."""
    with atomic_path(path, "") as tmp, open(tmp, "w", newline="", opener=nofollow) as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_json(path: Path, recover: str = "delete it and re-run the command that wrote it") -> dict:
    """A JSON object from ``path``; a file that is unreadable, not JSON or not an object is a
    one-line error naming it and ``recover``: how to get a good one."""
    import stat

    path = Path(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_JSON_BYTES:
            raise ValueError("not a regular file" if not stat.S_ISREG(info.st_mode)
                             else f"{info.st_size:,} bytes, more than {MAX_JSON_BYTES:,}")
        payload = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as error:  # JSON's errors are ValueErrors
        reason = getattr(error, "strerror", None) or (str(error).splitlines() or [""])[0][:80] \
            or type(error).__name__
        raise WorldModelsError(f"{path} is not readable JSON ({reason}): {recover}") from None
    if not isinstance(payload, dict):
        raise WorldModelsError(f"{path} holds a JSON {type(payload).__name__}, not an object: "
                               f"{recover}")
    return payload


def read_manifest(directory: Path, command: str) -> dict:
    """The manifest of ``directory``, checked to have the keys every stage reads; a damaged one
    is a one-line error saying to redo ``command`` with --force."""
    path = Path(directory) / "manifest.json"
    recover = f"re-run `worldmodels {command} --force` to redo that stage"
    manifest = read_json(path, recover)
    for key, kind in MANIFEST_KEYS.items():
        if not isinstance(manifest.get(key), kind):
            raise WorldModelsError(f"{path} lacks a valid {key!r} ({kind.__name__}): {recover}")
    from worldmodels.config import manifest_problem

    problem = manifest_problem(manifest)  # sizes a later stage builds from, before it does
    if problem:
        raise WorldModelsError(f"{path}: {problem}: {recover}")
    return manifest


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
    probe = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(prefix=".write-test", dir=directory)
        try:
            os.write(descriptor, b"ok")
        finally:
            os.close(descriptor)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise WorldModelsError(f"cannot write to {directory}: {reason}") from None
    finally:
        if probe is not None:  # removed whatever happens, a signal's exception included
            Path(probe).unlink(missing_ok=True)


def begin_stage(directory: Path, stage: str, config: dict, seed: int, inputs: dict,
                force: bool = False, missing=None, clear=None):
    """Start, resume or skip a stage, holding its lock (``lock_stage``) first. Returns
    (manifest, state) with state "new", "resumed" or "complete" (then nothing is to be done;
    ``options_differ`` tells whether the options asked for differ from the complete run's).
    An unfinished run is resumed only with the same config, seed and inputs; ``force`` starts
    over. ``missing(manifest)`` lists the outputs of a complete run that are gone (e.g.
    ``store.missing_episodes``): such a run is resumed, which makes them again. ``clear()``
    removes the stage's outputs for ``force``: only once the lock is held, so a run that holds
    it loses nothing to a second one."""
    ensure_writable(directory)
    lock_stage(directory, stage)
    try:
        if force and clear is not None:
            clear()
        return _begin_locked(directory, stage, config, seed, inputs, force, missing)
    except BaseException:
        release_stage(directory)
        raise


def _begin_locked(directory: Path, stage: str, config: dict, seed: int, inputs: dict,
                  force: bool, missing):
    path = Path(directory) / "manifest.json"
    if path.exists() and not force:
        old = read_json(path, f"add --force to `worldmodels {stage}` to start the stage over")
        same = not options_differ(old, config, seed, inputs)
        if old.get("status") == "complete" and not (missing and missing(old)):
            release_stage(directory)
            return old, "complete"
        if not same:
            raise WorldModelsError(
                f"{directory} holds an unfinished {stage} run with another config, seed or "
                "inputs: re-run the same command to resume it, or add --force to start over"
            )
        old["resumes"] = old.get("resumes", 0) + 1
        old["status"] = "running"
        write_json(path, old)
        return old, "resumed"
    return start_manifest(directory, stage, config, seed, inputs), "new"


def options_differ(manifest: dict, config: dict, seed: int, inputs: dict) -> list[str]:
    """What of config (by field), seed and inputs differ from those ``manifest`` was run with;
    empty when the same. A command says "complete, but the options differ: add --force to
    apply them" when a complete stage's list is not empty."""
    from dataclasses import MISSING

    from worldmodels.config import field_default

    old, new = _comparable(manifest.get("config")), _comparable(config)
    # a field added since the manifest was written: it ran with that field's default
    added = {key: field_default(key) for key in set(new) - set(old)}
    old.update(_normalise({key: value for key, value in added.items() if value is not MISSING}))
    differ = [f"config.{key}" for key in sorted(set(old) | set(new))
              if old.get(key) != new.get(key)]
    if manifest.get("seed") != seed:
        differ.append("seed")
    if manifest.get("inputs") != _normalise(inputs):
        differ.append("inputs")
    return differ


STAGE_INPUTS = {"train-vae": ("rollouts",), "encode": ("rollouts", "vae"),
                "train-rnn": ("series", "vae"), "train-controller": ("vae", "rnn")}
"""The input stages whose run ids each training stage's manifest records (by these names)."""
WORLD_INPUTS = ("vae", "rnn")
"""The inputs of a controller's scores (evaluate, compare, fidelity, select, resolution)."""


def input_run_ids(layout: Layout, names) -> dict:
    """The run ids the input stages ``names`` (rollouts, series, vae, rnn) of ``layout`` have
    now, as their manifests say (None for one not made or unreadable)."""
    folders = {"rollouts": layout.rollouts, "series": layout.series_dir, "vae": layout.vae,
               "rnn": layout.rnn}
    ids = {}
    for name in names:
        path = folders[name] / "manifest.json"
        try:
            ids[name] = read_json(path).get("run_id") if path.exists() else None
        except WorldModelsError:
            ids[name] = None  # a damaged manifest: the stage that reads it says so
    return ids


def remade(recorded, current: dict) -> list[str]:
    """The inputs in ``current`` (name -> run id now) whose run id is not the one ``recorded``
    (a manifest's or a result's inputs) holds: they were re-made since, so what was made of
    them is stale. An input not made now (None) is not counted: the stage's checks say so."""
    recorded = recorded if isinstance(recorded, dict) else {}
    return [name for name, run_id in current.items()
            if run_id is not None and recorded.get(name) != run_id]


def stale_line(stage: str, where, inputs: list[str]) -> str:
    """The one line a stale stage says before it runs again."""
    which = (f"its input {inputs[0]} was" if len(inputs) == 1
             else f"its inputs {', '.join(inputs)} were")
    return f"{stage}: stale in {where}: {which} re-made since; re-running"


_LOCKS: dict[str, int] = {}  # stage directory -> the open file descriptor of its lock
_SHARED: dict[str, int] = {}  # input stage directory -> the descriptor of its read lock


def lock_stage(directory: Path, stage: str = "stage", name: str = ".lock") -> None:
    """Hold the lock of a stage directory (the file ``name`` in it: one result among several
    in a shared folder can have its own) for as long as this process lives (or until
    ``release_stage``): a second process on it, or one reading it (``reading``), gets a
    one-line error naming the holder. The kernel releases it when the process ends in any way,
    kill -9 included. Re-entrant; a read lock this process holds on it becomes this lock."""
    import fcntl

    directory = Path(directory)
    path = directory / name
    key = _lock_key(directory, name)
    held = _LOCKS.get(key)
    if held is not None:
        try:
            if os.fstat(held).st_ino == os.stat(path).st_ino:
                return
        except OSError:
            pass
        release_stage(directory, name)  # the folder was removed and made again: lock anew
    descriptor = _SHARED.pop(key, None)
    if descriptor is None:
        descriptor = _open_lock(path)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        message = _in_use(directory, descriptor, stage)
        os.close(descriptor)
        raise WorldModelsError(message) from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    _LOCKS[key] = descriptor


def _open_lock(path: Path) -> int:
    """The descriptor of the lock file ``path``, made if missing; a link there is refused."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        refuse_link(path)  # a planted link must not redirect the lock's write
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as error:
            if os.path.islink(path):  # planted between the check and the open
                raise WorldModelsError(f"{path} is a symbolic link: remove it, then re-run") \
                    from None
            raise error


def _in_use(directory: Path, descriptor: int, stage: str) -> str:
    """The one line for a lock that another process holds: who, and whether it reads."""
    readers = _readers(descriptor)
    if readers:
        return (f"{directory} is being read by process {readers[0]} (a later stage reading "
                "its outputs): wait for it to end or stop it, then re-run")
    holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
    return (f"{directory} is in use by process {holder} (another `worldmodels {stage}` run on "
            "this experiment): wait for it to end or stop it, then re-run")


def _readers(descriptor: int) -> list[str]:
    """The processes holding a read lock on the file of ``descriptor`` (from /proc/locks)."""
    info = os.fstat(descriptor)
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks") as locks:
            rows = [line.split() for line in locks]
    except OSError:
        return []
    return [row[4] for row in rows if len(row) > 5 and row[1] == "FLOCK" and row[3] == "READ"
            and row[5] == device and row[4] != str(os.getpid())]


@contextmanager
def reading(stage: str, *directories: Path):
    """Hold a shared (read) lock on each input stage directory, in the order given (stage
    order, the one order every stage takes locks in, its own last), for the block: a process
    writing one (``lock_stage``) is refused, naming this one; one writing it now refuses this
    one. Locks this process already holds on them are kept as they are."""
    import fcntl

    taken = []
    try:
        for directory in directories:
            key = _lock_key(directory, ".lock")
            if key in _LOCKS or key in _SHARED or not Path(directory).is_dir():
                continue  # held here already, or missing (the stage's own check says so)
            descriptor = _open_lock(Path(directory) / ".lock")
            try:
                fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
                os.close(descriptor)
                raise WorldModelsError(
                    f"{directory} is being written by process {holder or 'unknown'}: wait for "
                    f"it to end or stop it, then re-run `worldmodels {stage}`") from None
            _SHARED[key] = descriptor
            taken.append(key)
        yield
    finally:
        for key in reversed(taken):
            descriptor = _SHARED.pop(key, None)  # (gone when it became a write lock)
            if descriptor is not None:
                os.close(descriptor)


def _lock_key(directory: Path, name: str) -> str:
    key = str(Path(directory).resolve())
    return key if name == ".lock" else f"{key}/{name}"


@contextmanager
def stage_lock(directory: Path, stage: str = "stage", name: str = ".lock"):
    """``lock_stage`` for the length of a block; a lock this process held before stays held."""
    held = _lock_key(directory, name) in _LOCKS
    lock_stage(directory, stage, name)
    try:
        yield
    finally:
        if not held:
            release_stage(directory, name)


def release_stage(directory: Path, name: str = ".lock") -> None:
    """Let other processes run the stage of ``directory`` (``finish_manifest`` does)."""
    descriptor = _LOCKS.pop(_lock_key(directory, name), None)
    if descriptor is not None:
        os.close(descriptor)


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
    process, the device TensorFlow computed on ("CPU" or "GPU:0 <name>"); release its lock."""
    from worldmodels.core.device import loaded_device_name

    manifest = dict(manifest, status="complete", summary=summary)
    if (device := loaded_device_name()) is not None:
        manifest["device"] = device
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(Path(directory) / "manifest.json", manifest)
    release_stage(directory)
    return manifest


def require_manifest(directory: Path, what: str, command: str) -> dict:
    """The complete manifest of an upstream stage, or a one-line error naming the command."""
    path = Path(directory) / "manifest.json"
    if not path.exists():
        raise WorldModelsError(f"no {what} at {directory}: run `worldmodels {command}` first")
    manifest = read_manifest(directory, command)
    if manifest.get("status") != "complete":
        raise WorldModelsError(
            f"{what} at {directory} is unfinished: re-run `worldmodels {command}`"
        )
    return manifest
