"""The stage pattern every stage shares: ``StageResult``, start / resume / skip-when-complete
(``_complete``, ``_begin``), read locks on input stages (``_reads``), the refusal to replace
another run's result (``_refuse_other``), seeds and TensorFlow set-up."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from worldmodels.config import (
    RANGES,
    to_dict,
)
from worldmodels.core.artifacts import (
    Layout,
    begin_stage,
    ensure_writable,
    read_json,
    reading,
    require_manifest,
    stage_lock,
)
from worldmodels.errors import WorldModelsError


@dataclass
class StageResult:
    """What a stage did: ``status`` "done", or "complete" when its outputs were already complete
    and nothing ran; the files it wrote, a one-line summary, and its figures in ``data``."""

    stage: str
    status: str
    summary: str
    written: list[Path] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    seconds: float = 0.0
    data: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when the stage found its outputs complete and ran nothing."""
        return self.status == "complete"

    def lines(self) -> list[str]:
        """What the CLI prints: the files written, details, the summary with the wall time."""
        if self.complete:
            return [self.summary]
        return ([f"wrote {path}" for path in self.written] + self.details
                + [f"{self.summary} ({self.seconds:.1f} s)"])


def say(line: str) -> None:
    """The stages' default ``log``: print at once (progress bars and errors interleave)."""
    print(line, flush=True)


def _skipped(stage: str, where, message: str | None = None) -> StageResult:
    return StageResult(stage, "complete",
                       message or f"{stage}: complete in {where}; add --force to redo it")


def _done(stage, started, summary, written, **data) -> StageResult:
    return StageResult(stage, "done", summary, [Path(p) for p in written],
                       seconds=time.time() - started, data=data)


def check_seed(seed: int) -> int:
    problem = RANGES["seed"].problem(seed)
    if problem:
        raise WorldModelsError(f"seed {problem}")
    return seed


def _stale(directory: Path, stage: str, current: dict, log) -> bool:
    """Whether the run of ``stage`` in ``directory`` was made of inputs re-made since (their
    run ids now, ``current``, differ from those its manifest recorded): then it says so with
    ``log`` and is to run again as with --force (its own outputs replaced under its lock).
    Not while an unfinished round of `iterate` re-made them (``_complete`` says so)."""
    from worldmodels.core.artifacts import remade, stale_line

    path = Path(directory) / "manifest.json"
    if not path.exists():
        return False
    which = remade(read_json(path).get("inputs"), current)
    if not which or _iterating(directory, stage):
        return False
    log(stale_line(stage, directory, which))
    return True


def _complete(directory: Path, stage: str, force: bool, config: dict, seed: int,
              current: dict | None = None):
    """The result of a stage found complete (saying so when the options asked for differ from
    its run's), or None when it is to run: checked before anything is removed or started.
    ``current``: its inputs' run ids now (a stale stage is never complete: ``_stale``)."""
    from worldmodels.core.artifacts import options_differ, remade

    path = Path(directory) / "manifest.json"
    if force or not path.exists():
        return None
    old = read_json(path)
    if old.get("status") != "complete" and (owned := _owned_by_round(directory, stage)):
        return owned
    if old.get("status") != "complete" or _missing(directory, stage)(old):
        return None
    which = remade(old.get("inputs"), current or {})
    if which and (number := _iterating(directory, stage)):
        return _skipped(stage, directory, (
            f"{stage}: in {directory}, iterate's round {number} is unfinished and re-made its "
            f"input {', '.join(which)}: run `worldmodels iterate` to finish the round (--force "
            "would start this stage over)"))
    if which:
        return None  # stale (``_stale`` said so): it runs again
    differ = options_differ(old, config, seed, old.get("inputs", {}))
    rounds = _iterated(directory, stage)
    if differ and rounds:
        return _skipped(stage, directory, (
            f"{stage}: complete in {directory} and trained further by iterate "
            f"({rounds} rounds), hence its other {', '.join(differ)}. --force would start this "
            "stage over and discard what the rounds added (their M and C stay in "
            f"iterate/round-N/); to train further instead, run `worldmodels iterate --rounds "
            f"{rounds + 1}`"))
    if differ:
        return _skipped(stage, directory, f"{stage}: complete in {directory}, but with other "
                                          f"{', '.join(differ)}: add --force to apply them")
    return _skipped(stage, directory)


def _owned_by_round(directory: Path, stage: str) -> StageResult | None:
    """A skip that names `iterate` when a round it left unfinished is training the M or the
    C in ``directory`` further (its run there, or the M that C stands on, is then unfinished:
    only `iterate` continues them); None otherwise."""
    if not (number := _iterating(directory, stage)):
        return None
    return _skipped(stage, directory, (
        f"{stage}: iterate's round {number} was stopped before it finished training the M and "
        f"C of {Path(directory).parent}: run `worldmodels iterate` to finish the round (--force "
        "would start this stage over)"))


def _iterated(directory: Path, stage: str) -> int:
    """How many rounds of `iterate` trained the M or the C in ``directory`` further (0 for
    other stages or an experiment that did not iterate)."""
    rounds = _iterate_record(directory, stage).get("rounds")
    return len(rounds) if isinstance(rounds, list) else 0


def _iterating(directory: Path, stage: str) -> int:
    """The round `iterate` has left unfinished in the experiment of ``directory`` when it is
    the M or the C that iterate trains further (0 otherwise): mid-round, iterate has re-made
    their inputs (series, then M) and goes on from there, so they are not stale."""
    current = _iterate_record(directory, stage).get("current")
    return int(current.get("round", 1)) if isinstance(current, dict) else 0


def _iterate_record(directory: Path, stage: str) -> dict:
    """`iterate`'s rounds.json of the experiment of ``directory`` when ``directory`` is the M
    or the C iterate trains further; {} otherwise, or when it is missing or damaged (iterate
    itself says so)."""
    directory = Path(directory)
    if not ((stage == "train-rnn" and directory.name == "rnn") or
            (stage == "train-controller" and directory.name == "controller-dream")):
        return {}
    path = directory.parent / "iterate" / "rounds.json"
    try:
        record = read_json(path) if path.exists() else {}
    except WorldModelsError:
        return {}
    return record if isinstance(record, dict) else {}


def _missing(directory: Path, stage: str):
    """What of a complete run of ``stage`` is gone (only a collection's episodes are checked:
    they are deterministic and can be made again)."""
    from worldmodels.data.store import missing_episodes

    if stage != "collect":
        return lambda manifest: []
    return lambda manifest: missing_episodes(directory, manifest)


def _begin(directory, stage, config: dict, seed, inputs, force, log, clear=None):
    """Start, resume or skip a stage: its manifest, or None when it is complete. With
    ``force``, ``clear()`` removes its outputs once it holds the stage's lock."""
    manifest, state = begin_stage(directory, stage, config, seed, inputs, force,
                                  _missing(directory, stage), clear)
    if state == "complete":
        return None
    if state == "resumed":
        log(f"{stage}: resuming the unfinished run in {directory}")
    return manifest


def _reads(stage: str, inputs):
    """Run the decorated stage holding a read lock (``artifacts.reading``) on each input stage
    directory ``inputs(arguments)`` names, in stage order: while it reads them, `--force` of
    the stages that write them is refused, naming it (and it is refused while they write)."""
    import functools
    import inspect

    def decorate(function):
        signature = inspect.signature(function)

        @functools.wraps(function)
        def run(*args, **kwargs):
            arguments = signature.bind(*args, **kwargs)
            arguments.apply_defaults()
            try:
                directories = inputs(arguments.arguments)
            except WorldModelsError:
                directories = []  # a bad name or round: the stage's own checks say so
            with reading(stage, *directories):
                return function(*args, **kwargs)
        return run
    return decorate


def _world(a) -> list[Path]:
    """The inputs of a stage that reads V and M alone: V, and M at the ``round`` argument when
    it has one."""
    return [a["layout"].vae, a["layout"].at_round(a.get("round", 0)).rnn]


def _world_and(trained_in: str = "dream"):
    """The inputs of a stage that drives a trained controller: ``_world``'s, and C (of
    ``trained_in``, or of the ``trained_in`` argument) at the ``round`` argument."""
    def inputs(a) -> list[Path]:
        here = a["layout"].at_round(a.get("round", 0))
        return [*_world(a), here.controller(a.get("trained_in", trained_in), a["variant"])]
    return inputs


def preset_note(layout: Layout, preset_name: str) -> str | None:
    """A line for a command run with ``preset_name`` on an experiment whose rollouts, V or M
    were made with another preset's settings (mixing presets is allowed, but rarely meant);
    None when they match this preset, or no single preset."""
    from worldmodels.config import PRESET_NAMES, get_preset
    from worldmodels.core.artifacts import _comparable

    for directory, section in ((layout.rollouts, "collect"), (layout.vae, "vae"),
                               (layout.rnn, "rnn")):
        path = Path(directory) / "manifest.json"
        if not path.exists():
            continue
        try:
            made = _comparable(read_json(path).get("config"))
        except (WorldModelsError, AttributeError, TypeError, ValueError):
            return None  # a damaged manifest: the stage that reads it says so
        matching = [name for name in PRESET_NAMES
                    if _comparable(to_dict(getattr(get_preset(name), section))) == made]
        if matching and preset_name not in matching:
            return (f"note: {directory} was made with the {matching[0]} preset's settings; "
                    f"this command uses --preset {preset_name}")
    return None


def setup_tensorflow(seed: int, threads: int | None = None) -> None:
    """Quiet TensorFlow's start-up logs, let it grow its memory on a GPU (if any), and seed
    Python, NumPy and TensorFlow. ``threads``
    limits TensorFlow's thread pools of this process: `train-controller --where real` uses 1,
    because its work runs in worker processes (each with TensorFlow on one thread, see
    ``worldmodels.model.agent``) and idle pool threads here would only take CPU from them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from worldmodels.core.device import start_tensorflow

    start_tensorflow()
    import keras

    if threads:
        from worldmodels.model.agent import limit_threads

        limit_threads(threads)
    keras.utils.set_random_seed(seed)


def _at_round(layout: Layout, round: int) -> Layout:
    """The experiment as `iterate` kept it after ``round`` (0: the latest); a one-line error
    when no such round was kept."""
    here = layout.at_round(round)
    if round and not here.runs.is_dir():
        raise WorldModelsError(f"`iterate` kept no round {round} in {here.runs}")
    return here


def _trained(layout: Layout, trained_in: str, variant: str) -> tuple[Path, dict]:
    directory = layout.controller(trained_in, variant)
    return directory, require_manifest(
        directory, f"controller trained in the {trained_in}",
        f"train-controller --where {trained_in} --variant {variant}")


def _refuse_other(path: Path, same_controller: bool, same_settings: bool, log,
                  earlier: str = "an earlier run of the controller") -> bool:
    """Whether an earlier result at ``path`` is complete; refuses to replace one of the same
    controller made with other settings (that needs ``force``)."""
    if same_controller and same_settings:
        return True
    if same_controller:
        raise WorldModelsError(f"{path} holds a result made with other options or another "
                               "seed: add --force to replace it")
    log(f"replacing {path}: it scored {earlier}")
    return False


@contextmanager
def _scoring(directory: Path, stage: str, lock: str, force: bool, partial: Path | None = None):
    """The frame of every scoring stage: the output folder checked writable, the result's own
    lock (``lock``: one result among several in a shared folder) held throughout, the
    finished episodes of a killed run (``partial``) dropped with ``force`` and once the result
    is written."""
    ensure_writable(directory)
    with stage_lock(directory, stage, lock):
        if force and partial is not None:
            partial.unlink(missing_ok=True)
        yield
        if partial is not None:
            partial.unlink(missing_ok=True)


def _kept(path: Path, force: bool, same, log,
          earlier: str = "an earlier run of the controller", world=None) -> dict | None:
    """The complete result at ``path`` a scoring stage keeps instead of running again: one of
    the same controller and settings (``same(old)`` -> (same controller, same settings)).
    One of the same controller with other settings is refused without ``force``; one of
    another controller is replaced (said with ``log``). ``world``: (stage, the run ids of V
    and M now, the controller's manifest): a result made with another V or M (recorded in
    its ``inputs``; one without them, with those C was trained with) is stale, said with
    ``log``, and its finished episodes (``partial``, a sibling file) are dropped. None: run."""
    if force or not path.exists():
        return None
    old = read_json(path)
    same_controller, same_settings = same(old)
    if same_controller and world is not None and _stale_result(path, old, *world, log):
        return None  # (another C's result is replaced as such by ``_refuse_other``)
    return old if _refuse_other(path, same_controller, same_settings, log, earlier) else None


def _stale_result(path: Path, old: dict, stage: str, current: dict, controller: dict,
                  log) -> bool:
    from worldmodels.core.artifacts import remade, stale_line

    which = remade(old.get("inputs", controller.get("inputs")), current)
    if which and remade(controller.get("inputs"), current):
        # C itself was trained in the old world: it has to be trained again first.
        raise WorldModelsError(
            f"{stale_line(stage, path, which).rsplit(';', 1)[0]}, and the controller "
            f"scored there was trained with the old ones: re-run `worldmodels "
            f"train-controller` (it is stale too), then `worldmodels {stage}`")
    if which:
        log(stale_line(stage, path, which))
        # Its finished episodes (if a run was killed) drove the old V and M: dropped too.
        path.with_name(path.stem + ".partial.json").unlink(missing_ok=True)
    return bool(which)


def _chosen(selection: dict | None) -> tuple | None:
    """Which candidate a selection chose (generation, kind); None for no selection."""
    return (selection["generation"], selection["kind"]) if selection else None
