"""Every stage as a Python function: the CLI's commands are thin faces over these.

Each stage takes a ``Layout`` (where the experiment is), its config dataclass (from a preset,
``worldmodels.config.resolve``) and a seed, and owns start, resume, ``force``, skip-when-
complete and the manifest; it returns a ``StageResult``. A notebook runs the whole method as
the CLI does::

    from worldmodels import stages
    from worldmodels.artifacts import Layout
    from worldmodels.config import get_preset

    layout, preset = Layout("data", "results", "mine"), get_preset("smoke")
    stages.pipeline(layout, preset, seed=0, preset_name="smoke")

Validation comes first: every option and input is checked before ``force`` removes anything
and before a manifest is written, so a bad command leaves every file as it was.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from worldmodels.artifacts import (
    Layout,
    begin_stage,
    ensure_writable,
    finish_manifest,
    read_json,
    reading,
    refuse_link,
    require_manifest,
    stage_lock,
    write_json,
)
from worldmodels.config import (
    ENV_ID,
    RANGES,
    CollectConfig,
    CompareConfig,
    ControllerConfig,
    EvaluateConfig,
    IterateConfig,
    Preset,
    RnnConfig,
    VaeConfig,
    to_dict,
    validate,
)
from worldmodels.envs import check_env_id, get_env
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


def _complete(directory: Path, stage: str, force: bool, config: dict, seed: int):
    """The result of a stage found complete (saying so when the options asked for differ from
    its run's), or None when it is to run: checked before anything is removed or started."""
    from worldmodels.artifacts import options_differ

    path = Path(directory) / "manifest.json"
    if force or not path.exists():
        return None
    old = read_json(path)
    if old.get("status") != "complete" or _missing(directory, stage)(old):
        return None
    differ = options_differ(old, config, seed, old.get("inputs", {}))
    if differ:
        return _skipped(stage, directory, f"{stage}: complete in {directory}, but with other "
                                          f"{', '.join(differ)}: add --force to apply them")
    return _skipped(stage, directory)


def _missing(directory: Path, stage: str):
    """What of a complete run of ``stage`` is gone (only a collection's episodes are checked:
    they are deterministic and can be made again)."""
    from worldmodels.store import missing_episodes

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


def preset_note(layout: Layout, preset_name: str) -> str | None:
    """A line for a command run with ``preset_name`` on an experiment whose rollouts, V or M
    were made with another preset's settings (mixing presets is allowed, but rarely meant);
    None when they match this preset, or no single preset."""
    from worldmodels.artifacts import _comparable
    from worldmodels.config import PRESET_NAMES, get_preset, to_dict

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
    ``worldmodels.agent``) and idle pool threads here would only take CPU from them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from worldmodels.device import start_tensorflow

    start_tensorflow()
    import keras

    if threads:
        from worldmodels.agent import limit_threads

        limit_threads(threads)
    keras.utils.set_random_seed(seed)


# ---------------------------------------------------------------------------------------------
# data and V


def collect(layout: Layout, config: CollectConfig, seed: int = 0, force: bool = False,
            ray_address: str | None = None, progress: bool = True, log=say) -> StageResult:
    """Rollouts of the real env with an exploration policy into DATA/NAME/rollouts."""
    from worldmodels.collect import collect as run_collect
    from worldmodels.store import list_episodes, validate_episodes

    started = time.time()
    validate(config), check_seed(seed), check_env_id(config.env_id)
    env = get_env(config.env_id)
    if config.policy not in env.policies:
        raise WorldModelsError(f"policy {config.policy!r} does not play {env.id}; choose one of "
                               f"{', '.join(env.policies)}")
    ensure_writable(layout.rollouts)
    if done := _complete(layout.rollouts, "collect", force, to_dict(config), seed):
        return done
    manifest = _begin(layout.rollouts, "collect", to_dict(config), seed, {}, force, log,
                      clear=lambda: [path.unlink() for path in list_episodes(layout.rollouts)])
    result = run_collect(layout.rollouts, config, seed, progress=progress,
                         ray_address=ray_address)
    # Every episode read once (those of earlier attempts too): a damaged one is named now,
    # not when V's training reads it.
    validate_episodes(list_episodes(layout.rollouts), skip_corrupt=False)
    # A resumed run reports all its episodes, not only those of the last attempt.
    result.update(_episode_means(list_episodes(layout.rollouts)))
    finish_manifest(layout.rollouts, manifest, wall_seconds=time.time() - started, **result)
    return _done("collect", started,
                 f"collect: {result['episodes']} episodes, mean return "
                 f"{result['mean_return']:.1f}, mean length {result['mean_length']:.0f}",
                 [f"{layout.rollouts}/episode_*.h5"], **result)


def _episode_means(paths) -> dict:
    import h5py
    import numpy as np

    attrs = []
    for path in paths:
        with h5py.File(path, "r") as file:
            attrs.append((float(file.attrs["return"]), int(file.attrs["length"])))
    returns, lengths = np.asarray(attrs).T
    return {"mean_return": float(returns.mean()), "mean_length": float(lengths.mean())}


@_reads("train-vae", lambda a: [a["layout"].rollouts])
def train_vae(layout: Layout, config: VaeConfig, seed: int = 0, force: bool = False,
              skip_corrupt: bool = False, progress: bool = True, log=say) -> StageResult:
    """V trained on DATA/NAME/rollouts, into RESULTS/NAME/vae."""
    from worldmodels import checkpoint
    from worldmodels.store import episode_length, require_episodes, validate_episodes

    started = time.time()
    validate(config), check_seed(seed)
    paths = require_episodes(layout.rollouts)
    rollouts = require_manifest(layout.rollouts, "rollouts", "collect")
    if config.max_episodes:
        paths = paths[: config.max_episodes]
    paths = validate_episodes(paths, skip_corrupt, warn=log)
    ensure_writable(layout.vae)
    if done := _complete(layout.vae, "train-vae", force, to_dict(config), seed):
        return done
    setup_tensorflow(seed)
    from worldmodels.vae import ConvVAE, read_episode, reconstruction_grid
    from worldmodels.vae import train_vae as fit

    total_frames = sum(episode_length(p) + 1 for p in paths)
    inputs = {"rollouts": rollouts["run_id"], "episodes": len(paths), "frames": total_frames}
    manifest = _begin(layout.vae, "train-vae", to_dict(config), seed, inputs, force, log,
                      clear=lambda: checkpoint.clear(layout.vae))
    model = ConvVAE(config.z_size)
    log(f"V: ConvVAE with {model.count_params():,} parameters, z={config.z_size}, "
        f"{total_frames:,} frames from {len(paths)} episodes")
    history = fit(model, paths, config, seed, layout.vae, total_frames, progress=progress)
    frames = read_episode(paths[0])["frames"]
    picks = frames[:: max(1, len(frames) // 8)][:8]
    reconstruction_grid(model, picks, layout.vae / "reconstructions.png")
    last = history[-1]
    finish_manifest(layout.vae, manifest, wall_seconds=time.time() - started,
                    parameters=model.count_params(), **last)
    return _done("train-vae", started,
                 f"train-vae: {config.epochs} epochs, loss {last['loss']:.1f} "
                 f"(reconstruction {last['reconstruction']:.1f}, kl {last['kl']:.1f})",
                 [layout.vae / f for f in ("vae.weights.h5", "manifest.json", "metrics.csv",
                                           "reconstructions.png")], **last)


@_reads("encode", lambda a: [a["layout"].rollouts, a["layout"].vae])
def encode(layout: Layout, seed: int = 0, force: bool = False, skip_corrupt: bool = False,
           progress: bool = True, log=say) -> StageResult:
    """mu and logvar of every frame of DATA/NAME/rollouts, into DATA/NAME/series/series.h5."""
    from worldmodels.store import require_episodes, validate_episodes

    started = time.time()
    check_seed(seed)
    paths = require_episodes(layout.rollouts)
    rollouts = require_manifest(layout.rollouts, "rollouts", "collect")
    vae = require_manifest(layout.vae, "trained V", "train-vae")
    paths = validate_episodes(paths, skip_corrupt, warn=log)
    ensure_writable(layout.series_dir)
    if done := _complete(layout.series_dir, "encode", force,
                         {"z_size": int(vae["config"]["z_size"])}, seed):
        return done
    setup_tensorflow(seed)
    from worldmodels.vae import encode_series, load_vae

    model = load_vae(layout.vae, vae["config"]["z_size"])
    inputs = {"rollouts": rollouts["run_id"], "vae": vae["run_id"], "episodes": len(paths)}
    manifest = _begin(layout.series_dir, "encode", {"z_size": model.z_size}, seed, inputs,
                      force, log, clear=lambda: layout.series.with_name(
                          layout.series.name + ".partial").unlink(missing_ok=True))
    action_size = get_env(rollouts["config"].get("env_id", ENV_ID)).action_size
    result = encode_series(model, paths, layout.series, vae["run_id"], progress=progress,
                           action_size=action_size)
    finish_manifest(layout.series_dir, manifest, wall_seconds=time.time() - started, **result)
    return _done("encode", started,
                 f"encode: {result['episodes']} episodes, {result['frames']:,} frames",
                 [layout.series], **result)


# ---------------------------------------------------------------------------------------------
# M and C


@_reads("train-rnn", lambda a: [a["layout"].vae, a["layout"].series_dir])
def train_rnn(layout: Layout, config: RnnConfig, seed: int = 0, force: bool = False,
              progress: bool = True, log=say) -> StageResult:
    """M trained on DATA/NAME/series, into RESULTS/NAME/rnn."""
    from worldmodels import checkpoint
    from worldmodels.store import require_series

    started = time.time()
    validate(config), check_seed(seed)
    series_manifest = require_manifest(layout.series_dir, "series", "encode")
    vae = require_manifest(layout.vae, "trained V", "train-vae")
    if series_manifest["inputs"]["vae"] != vae["run_id"]:
        raise WorldModelsError(f"the series in {layout.series_dir} was made by another V than "
                               f"{layout.vae}: re-run `worldmodels encode`")
    ensure_writable(layout.rnn)
    if done := _complete(layout.rnn, "train-rnn", force, to_dict(config), seed):
        return done
    setup_tensorflow(seed)
    with require_series(layout.series) as series:
        z_size = int(series.attrs["z_size"])
        inputs = {"series": series_manifest["run_id"], "vae": vae["run_id"], "z_size": z_size,
                  "action_size": int(series["actions"].shape[2])}
        manifest = _begin(layout.rnn, "train-rnn", to_dict(config), seed, inputs, force, log,
                          clear=lambda: checkpoint.clear(layout.rnn))
        last = fit_rnn(layout, series, config, seed, manifest, started, progress, log)
    return _done("train-rnn", started,
                 f"train-rnn: {config.epochs} epochs, loss {last['loss']:.3f} (mdn "
                 f"{last['mdn']:.3f}, reward {last['reward']:.3f}, done {last['done']:.3f})",
                 [layout.rnn / f for f in ("rnn.weights.h5", "manifest.json", "metrics.csv")],
                 **last)


def fit_rnn(layout: Layout, series, config: RnnConfig, seed: int, manifest: dict,
            started: float, progress: bool, log=say) -> dict:
    """Build M for the series, train it (from its checkpoint when there is one) and mark its
    manifest complete; returns the last epoch's losses. Shared by train-rnn and iterate."""
    from worldmodels.rnn import MDNRNN, REFERENCE_PARAMETERS
    from worldmodels.rnn import train_rnn as fit

    model = MDNRNN(int(series.attrs["z_size"]), config.hidden_size, config.mixtures,
                   config.dropout, action_size=int(series["actions"].shape[2]))
    heads = model.reward_head.count_params() + model.done_head.count_params()
    log(f"M: MDN-RNN with {model.count_params():,} parameters "
        f"({model.count_params() - heads:,} without the reward and done heads; "
        f"reference {REFERENCE_PARAMETERS:,}), {len(series['lengths'])} episodes")
    history = fit(model, series, config, seed, layout.rnn, progress=progress)
    finish_manifest(layout.rnn, manifest, wall_seconds=time.time() - started,
                    parameters=model.count_params(), **history[-1])
    return history[-1]


def _controller_inputs(layout: Layout, variant: str) -> dict:
    from worldmodels.models import check_world

    vae_manifest, rnn_manifest = check_world(layout)
    return {"vae": vae_manifest["run_id"], "rnn": rnn_manifest["run_id"],
            "z_size": int(rnn_manifest["inputs"]["z_size"]),
            "hidden_size": int(rnn_manifest["config"]["hidden_size"]), "variant": variant}


def _clear_controller(directory: Path) -> None:
    from worldmodels.evolution import clear_state

    clear_state(directory)
    for name in ("history.csv", "history.png", "best.npy", "mean.npy", "selected.npy",
                 "selection.json", "selection.png", "selection.partial.json"):
        (Path(directory) / name).unlink(missing_ok=True)


@_reads("train-controller", lambda a: [a["layout"].vae, a["layout"].rnn])
def train_controller(layout: Layout, config: ControllerConfig, seed: int = 0,
                     variant: str = "zh", force: bool = False, ray_address: str | None = None,
                     progress: bool = True, log=say) -> StageResult:
    """C evolved with CMA-ES in the dream (or the real env), into
    RESULTS/NAME/controller-WHERE[-VARIANT]."""
    from worldmodels.controller import VARIANTS, Controller
    from worldmodels.models import load_world
    from worldmodels.scoring import describe_training, evolve_controller

    started = time.time()
    validate(config), check_seed(seed)
    if variant not in VARIANTS:
        raise WorldModelsError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    checking = config.where == "dream" and config.real_every > 0
    if ray_address and not (config.where == "real" or checking):
        raise WorldModelsError("--ray-address runs only with --where real or with real checks")
    directory = layout.controller(config.where, variant)
    ensure_writable(directory)
    inputs = _controller_inputs(layout, variant)
    if done := _complete(directory, "train-controller", force, to_dict(config), seed):
        return done
    setup_tensorflow(seed, threads=1 if config.where == "real" else None)
    world = load_world(layout, need_vae=(config.where == "real" or checking),
                       burn_in=config.burn_in if config.where == "dream" else 0)
    # With force, the outputs go only now (every check above has passed), under the lock.
    manifest = _begin(directory, "train-controller", to_dict(config), seed, inputs, force, log,
                      clear=lambda: _clear_controller(directory))
    spec = Controller(variant, world["z_size"], world["hidden_size"], world["env_id"])
    for line in describe_training(spec, config):
        log(line)
    history = evolve_controller(world, config, seed, directory, spec, ray_address, progress)
    from worldmodels.figures import plot_controller_history

    plot_controller_history(history, directory / "history.png",
                            f"C ({spec.variant}) trained in the {config.where}", config.where)
    best = max(row["best_so_far"] for row in history)
    finish_manifest(directory, manifest, wall_seconds=time.time() - started,
                    parameters=spec.param_count, best_fitness=best, final_mean=history[-1]["mean"])
    checks = [row for row in history if row.get("real_best") not in (None, "")]
    real = (f"; real env at generation {checks[-1]['generation']}: best "
            f"{checks[-1]['real_best']:.1f}, mean {checks[-1]['real_mean']:.1f}" if checks else "")
    return _done("train-controller", started,
                 f"train-controller ({config.where}): best fitness {best:.1f}, last generation "
                 f"mean {history[-1]['mean']:.1f}{real}",
                 [directory / f for f in ("best.npy", "mean.npy", "history.csv", "history.png",
                                          "manifest.json")],
                 best_fitness=best, history=history)


# ---------------------------------------------------------------------------------------------
# scores


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


def _chosen(selection: dict | None) -> tuple | None:
    """Which candidate a selection chose (generation, kind); None for no selection."""
    return (selection["generation"], selection["kind"]) if selection else None


def _world_and(trained_in: str = "dream"):
    """The inputs of a stage that drives a trained controller: V, M and C (of ``trained_in``,
    or of the ``trained_in`` argument), at the ``round`` argument when it has one."""
    def inputs(a) -> list[Path]:
        here = a["layout"].at_round(a.get("round", 0))
        return [a["layout"].vae, here.rnn,
                here.controller(a.get("trained_in", trained_in), a["variant"])]
    return inputs


@_reads("evaluate", _world_and())
def evaluate(layout: Layout, config: EvaluateConfig, seed: int = 0, where: str = "real",
             trained_in: str = "dream", variant: str = "zh", params: str = "best",
             round: int = 0, force: bool = False, ray_address: str | None = None,
             progress: bool = True, log=say) -> StageResult:
    """A trained agent scored in the real env (or the dream), into
    RESULTS/NAME/evaluate/WHERE-TRAINED_IN[-VARIANT]-PARAMS[-noiseSTD].json. An earlier
    evaluation of the same controller with other options is replaced only with ``force``."""
    from worldmodels.artifacts import _comparable  # the config without its worker count
    from worldmodels.evaluation import SELECTED, check_selection
    from worldmodels.evaluation import evaluate as run_evaluation

    started = time.time()
    validate(config), check_seed(seed)
    if config.noise and where != "real":
        raise WorldModelsError("--noise runs only with --where real")
    if ray_address and where != "real":
        raise WorldModelsError("--ray-address runs only with --where real")
    if round < 0:
        raise WorldModelsError(f"expected a round number ≥ 1, got {round}")
    layout = layout.at_round(round)
    if round and not layout.runs.is_dir():
        raise WorldModelsError(f"`iterate` kept no round {round} in {layout.runs}")
    directory, controller = _trained(layout, trained_in, variant)
    trained_noise = float(controller["config"].get("action_noise", 0.0))
    if where == "real" and config.noise != trained_noise:
        log(f"evaluate: C was scored in the {trained_in} with action noise {trained_noise:g}; "
            f"this evaluation drives it with {config.noise:g}")
    path = layout.evaluation(where, trained_in, variant, params, config.noise)
    partial = path.with_name(path.stem + ".partial.json")
    refuse_link(path), refuse_link(partial)  # before any episode runs, not when writing
    selection = check_selection(directory, controller) if params == SELECTED else None
    chosen = _chosen(selection["selected"]) if selection else None
    ensure_writable(layout.evaluations)
    with stage_lock(layout.evaluations, "evaluate", f".{path.stem}.lock"):
        if path.exists() and not force:
            old = read_json(path)  # (evaluations written before --noise existed had none)
            if _refuse_other(path, old.get("controller_run_id") == controller.get("run_id")
                             and _chosen(old.get("selection")) == chosen,
                             _comparable({"noise": 0.0, **(old.get("config") or {})})
                             == _comparable(to_dict(config)) and old.get("seed") == seed, log,
                             "an earlier run of the controller or an earlier selection"):
                return _skipped("evaluate", path,
                                f"evaluate: complete in {path} ({old['mean']:.1f} ± "
                                f"{old['std']:.1f}); add --force to redo it")
        if force:
            partial.unlink(missing_ok=True)
        setup_tensorflow(seed)
        result = run_evaluation(layout, controller, directory, params, where, config, seed,
                                progress, partial_path=partial, variant=variant,
                                ray_address=ray_address)
        result.update(config=to_dict(config), seed=seed, wall_seconds=time.time() - started,
                      **({"round": round} if round else {}))
        if selection:  # real episodes chose it: never the pure dream figure
            result["selection"] = {"label": "dream-trained, real-selected",
                                   "validation_episodes": len(selection["tracks"]),
                                   **selection["selected"]}
        write_json(path, result)
        partial.unlink(missing_ok=True)
        noise = f", action noise {config.noise:g}" if config.noise else ""
        if "selection" in result:
            noise += ", dream-trained, real-selected"
        return _done("evaluate", started,
                     f"evaluate ({where}, {result['episodes']} episodes{noise}): "
                     f"{result['mean']:.1f} ± {result['std']:.1f}", [path], **result)


@_reads("compare", _world_and())
def compare(layout: Layout, config: CompareConfig, seed: int = 0, trained_in: str = "dream",
            variant: str = "zh", params: str = "best", force: bool = False,
            progress: bool = True, log=say) -> StageResult:
    """A trained controller in the dream at several temperatures and in the real env, into
    RESULTS/NAME/compare/CONTROLLER-PARAMS.{md,json,csv,png}."""
    from worldmodels.compare import compare as run_compare
    from worldmodels.compare import (
        comparison_key,
        markdown_table,
        output_stem,
        write_comparison,
    )

    started = time.time()
    validate(config), check_seed(seed)
    directory, controller = _trained(layout, trained_in, variant)
    stem = output_stem(trained_in, variant, params)
    output = layout.experiment / "compare"
    path, partial = output / f"{stem}.json", output / f"{stem}.partial.json"
    for name in (path, partial, *(output / f"{stem}.{ext}" for ext in ("csv", "md", "png"))):
        refuse_link(name)  # before any episode runs, not when writing
    ensure_writable(output)
    key = comparison_key(controller, params, variant, config, seed)
    with stage_lock(output, "compare", f".{stem}.lock"):
        if path.exists() and not force:
            old = read_json(path).get("key") or {}
            if _refuse_other(path, old.get("controller") == key["controller"], old == key, log):
                return _skipped("compare", path)
        if force:
            partial.unlink(missing_ok=True)
        setup_tensorflow(seed)
        result = run_compare(layout, controller, directory, params, variant, config, seed,
                             partial, progress=progress, log=log)
        written = write_comparison(result, output, stem)
        partial.unlink(missing_ok=True)
    done = _done("compare", started,
                 f"compare: real {result['real']['mean']:.1f} ± {result['real']['std']:.1f} "
                 f"over {result['episodes']} episodes; dream at {len(result['rows'])} "
                 "temperatures", written, **result)
    done.details = ["", markdown_table(result)]
    return done


def temperatures(layout: Layout, preset: Preset, seed: int = 0, force: bool = False,
                 progress: bool = True, log=say) -> StageResult:
    """The paper's temperature table: for each temperature of ``preset.compare``, C trained
    only in the dream at it (``preset.controller`` otherwise), then scored in that dream and
    in the real env (``preset.compare.episodes`` each), beside the paper's figures and the
    random policy; into RESULTS/NAME/temperatures/ (tau-T/ holds each C and its scores,
    table.{json,md,png} the table). Each C and each score resumes on its own."""
    import dataclasses

    from worldmodels import temperatures as table
    from worldmodels.models import experiment_env

    started = time.time()
    config = validate(preset.compare)
    check_seed(seed)
    env = experiment_env(layout)
    output = layout.runs / "temperatures"
    rows = []
    for tau in config.temperatures:
        log(f"== temperature {tau:g}")
        here = layout.at_temperature(tau)
        trained = train_controller(here, dataclasses.replace(preset.controller, temperature=tau),
                                   seed, force=force, progress=progress, log=log)
        for line in trained.lines():
            log(line)
        scores = {}
        for where in ("dream", "real"):
            evaluation = dataclasses.replace(preset.evaluate, episodes=config.episodes,
                                             max_steps=config.max_steps, temperature=tau)
            result = evaluate(here, evaluation, seed, where=where, force=force,
                              progress=progress, log=log)
            for line in result.lines():
                log(line)
            scores[where] = read_json(here.evaluation(where, "dream", "zh", "best"))
        rows.append({"temperature": tau, "episodes": config.episodes,
                     "dream_mean": scores["dream"]["mean"], "dream_std": scores["dream"]["std"],
                     "real_mean": scores["real"]["mean"], "real_std": scores["real"]["std"]})
    log("== random policy")
    random = table.random_row(env.id, config.max_steps, config.episodes, seed)
    result = table.table(env.id, rows, random)
    result.update(seed=seed, config=to_dict(config), wall_seconds=time.time() - started)
    written = table.write(result, output)
    return _done("temperatures", started, "temperatures:\n" + table.markdown(result).rstrip(),
                 written, **result)


@_reads("fidelity", _world_and("dream"))
def fidelity(layout: Layout, config, seed: int = 0, variant: str = "zh", params: str = "best",
             round: int = 0, force: bool = False, ray_address: str | None = None,
             progress: bool = True, log=say) -> StageResult:
    """M measured against the controller's own real episodes (``config``: a FidelityConfig),
    into RUNS/fidelity/dream[-VARIANT]-PARAMS.{json,png}."""
    from worldmodels.fidelity import fidelity_key, fidelity_path, run_fidelity

    started = time.time()
    validate(config), check_seed(seed)
    layout = layout.at_round(round)
    if round and not layout.runs.is_dir():
        raise WorldModelsError(f"`iterate` kept no round {round} in {layout.runs}")
    controller = require_manifest(layout.controller("dream", variant),
                                  "controller trained in the dream",
                                  f"train-controller --variant {variant}")
    path, key = fidelity_path(layout, variant, params), fidelity_key(config, seed, controller)
    ensure_writable(path.parent)
    with stage_lock(path.parent, "fidelity", f".{path.stem}.lock"):
        if path.exists() and not force:
            old = read_json(path)
            if _refuse_other(path, old.get("controller_run_id") == key["controller_run_id"],
                             {k: old.get(k) for k in key} == key, log):
                return _skipped("fidelity", path, f"fidelity: complete in {path}; add --force "
                                                  f"to redo it\n{_fidelity_line(old['summary'])}")
        setup_tensorflow(seed)
        path, result = run_fidelity(layout, controller, config, seed, params, variant,
                                    progress, ray_address)
    return _done("fidelity", started, _fidelity_line(result["summary"]),
                 [path, path.with_suffix(".png")], result=result)


@_reads("select", _world_and("dream"))
def select(layout: Layout, config, seed: int = 0, variant: str = "zh", round: int = 0,
           force: bool = False, ray_address: str | None = None, progress: bool = True,
           log=say) -> StageResult:
    """The controllers C passed through in the dream scored on real validation tracks
    (``config``: a SelectConfig); the best becomes ``--params selected``, into
    RUNS/controller-dream[-VARIANT]/selected.npy and selection.{json,png}."""
    from worldmodels.evaluation import SELECTION
    from worldmodels.selection import describe
    from worldmodels.selection import select as run_select

    started = time.time()
    validate(config), check_seed(seed)
    layout = layout.at_round(round)
    if round and not layout.runs.is_dir():
        raise WorldModelsError(f"`iterate` kept no round {round} in {layout.runs}")
    directory, controller = _trained(layout, "dream", variant)
    path, partial = directory / SELECTION, directory / "selection.partial.json"
    ensure_writable(directory)
    with stage_lock(directory, "select", ".selection.lock"):
        if path.exists() and not force:
            old = read_json(path)
            if _refuse_other(path, old.get("controller_run_id") == controller.get("run_id"),
                             old.get("config") == to_dict(config) and old.get("seed") == seed,
                             log):
                return _skipped("select", path, f"select: complete in {path} ({describe(old)}, "
                                                f"{old['selected']['mean']:.1f} on validation "
                                                "tracks); add --force to redo it")
        if force:
            partial.unlink(missing_ok=True)
        setup_tensorflow(seed)
        result = run_select(layout, controller, directory, config, seed, variant, progress,
                            partial, ray_address)
        partial.unlink(missing_ok=True)
    chosen, candidates = result["selected"], result["candidates"]
    dream = (f"; the dream orders them with rank correlation {result['rank_correlation']:.2f}, "
             f"its choice drove {result['real_of_dream_choice']:.1f}"
             if "rank_correlation" in result else "")
    done = _done("select", started,
                 f"select: {describe(result)} drove best of {len(candidates)} candidates on "
                 f"{len(result['tracks'])} validation tracks, {chosen['mean']:.1f} ± "
                 f"{chosen['std']:.1f} (the kept best: {candidates[-1]['mean']:.1f}){dream}",
                 [directory / "selected.npy", path, directory / "selection.png"], **result)
    done.details = ["score it on the test tracks with `worldmodels evaluate --params selected` "
                    "(reported as dream-trained, real-selected)"]
    return done


def _fidelity_line(s: dict) -> str:
    ranking = (f"; the dream ranks the next candidates with rank correlation "
               f"{s['rank_correlation']:.2f} to their real scores"
               if "rank_correlation" in s else "")
    return (f"fidelity: real {s['real_mean']:.1f} ± {s['real_std']:.1f}, dream "
            f"{s['dream_mean']:.1f} ± {s['dream_std']:.1f} "
            f"({100 * s['dreams_above_possible']:.0f} % of dreams pay more than a track "
            f"can); M predicts {s['predicted_return_on_real_path']:.1f} along the real "
            f"episodes{ranking}")


def enjoy(layout: Layout, config: EvaluateConfig, seed: int = 0, trained_in: str = "dream",
          variant: str = "zh", params: str = "best", episode_index: int = 0, episodes: int = 1,
          track_seed: int | None = None, round: int = 0, gif: bool = False,
          progress: bool = True, log=say) -> StageResult:
    """Videos of the agent on `evaluate`'s tracks (``config``: its max_steps and noise), or on
    the track of ``track_seed``, into RESULTS/NAME/enjoy/."""
    from worldmodels.device import setup_gpu
    from worldmodels.enjoy import enjoy as film

    started = time.time()
    validate(config), check_seed(seed)
    if episodes < 1 or episode_index < 0 or round < 0:
        raise WorldModelsError("--episodes must be at least 1, --episode-index and --round at "
                               "least 0")
    if track_seed is not None and episodes != 1:
        raise WorldModelsError("--track-seed drives one track: leave --episodes at 1")
    setup_tensorflow(seed, threads=1)  # one thread, as in `evaluate`'s workers
    setup_gpu()
    records = film(layout.at_round(round), trained_in, variant, params, config, seed,
                   episode_index, episodes, track_seed, gif, progress)
    written = [path for r in records for path in ([r["video"], r["gif"]] if gif else [r["video"]])]
    done = _done("enjoy", started, f"enjoy: {episodes} episode(s) of the controller trained in "
                                   f"the {trained_in}", written, records=records)
    done.details = [f"track {r['seed']}: return {r['return']:.1f} in {r['length']} steps"
                    for r in records]
    return done


def show(layout: Layout, collect_config: CollectConfig, seed: int = 0, variant: str = "zh",
         trained_in: str = "dream", params: str = "best", temperature: float | None = None,
         log=say) -> StageResult:
    """Pictures of V, M and C into RESULTS/NAME/figures: V's reconstructions and traversal, M's
    open-loop predictions on a fresh real episode of ``collect_config``'s policy, a GIF of the
    dream C was trained in (its burn-in, dropout and action noise), and the training curves.
    Parts whose stage has not run are skipped with the command that runs them."""
    from worldmodels import show as draw
    from worldmodels.compare import output_stem

    started = time.time()
    check_seed(seed)
    if temperature is not None:
        validate(EvaluateConfig(temperature=temperature))
    vae_manifest = draw.require_vae(layout)
    directory = layout.experiment / "figures"
    ensure_writable(directory)
    setup_tensorflow(seed)
    world, dreamer = draw.load_for_show(layout, trained_in, variant, params, log)
    episode = draw.real_episode(collect_config.env_id, collect_config.policy,
                                min(collect_config.max_steps, draw.REAL_STEPS), seed)
    if world is None:
        from worldmodels.vae import load_vae

        vae = load_vae(layout.vae, vae_manifest["config"]["z_size"])
    else:
        vae = world["vae"]
    written = draw.draw_vae(vae, episode["frames"], directory)
    if world:
        written.append(draw.draw_open_loop(vae, world["rnn"], episode, directory))
    if dreamer:
        spec, flat, trained = dreamer
        path = directory / f"dream-{output_stem(trained_in, variant, params)}.gif"
        path, record = draw.draw_dream(world, spec, flat, temperature or trained["temperature"],
                                       trained["max_steps"], seed, path)
        log(f"dream GIF: {draw.describe_dream(record)}")
        written += [path, path.with_suffix(".json")]
    written += draw.draw_curves(layout, directory)
    return _done("show", started, f"show: {len(written)} figures in {directory}", written)


def report(layout: Layout, preset_name: str = "small", log=say) -> StageResult:
    """RESULTS/NAME/REPORT.md from the files the stages wrote (nothing is re-run);
    ``preset_name`` only shapes the commands it names for parts not run yet."""
    from worldmodels.report import write_report

    started = time.time()
    if not layout.experiment.is_dir():
        raise WorldModelsError(f"no experiment at {layout.experiment}: run `worldmodels "
                               f"pipeline --preset {preset_name} --name {layout.name}` first")
    return _done("report", started, f"report: {layout.experiment / 'REPORT.md'}",
                 [write_report(layout, preset_name)])


# ---------------------------------------------------------------------------------------------
# compositions


def iterate(layout: Layout, config: IterateConfig, seed: int = 0, workers: int | None = None,
            ray_address: str | None = None, progress: bool = True, log=say) -> StageResult:
    """Rounds of iterative training of an experiment that has V, M and C (in the dream): each
    round collects with C + noise, re-encodes, trains M further and evolves C further; writes
    RESULTS/NAME/iterate/rounds.* and keeps each round's M and C in iterate/round-N/. A re-run
    continues a killed round; more rounds may be asked for later."""
    from worldmodels import iterate as it

    started = time.time()
    validate(config), check_seed(seed)
    if workers is not None:
        validate(CollectConfig(workers=workers))
    if config.rounds == 0:
        raise WorldModelsError("no rounds of iterative training asked for: give their number "
                               "(--rounds)")
    it.check_ready(layout)
    progress_data = it.load_progress(layout, config, seed)
    it.check_controller(layout, progress_data)
    if len(progress_data["rounds"]) >= config.rounds:
        return _skipped("iterate", it.rounds_path(layout),
                        f"iterate: {len(progress_data['rounds'])} rounds complete in "
                        f"{it.rounds_path(layout)}; ask for more with --rounds")
    setup_tensorflow(seed)
    while len(progress_data["rounds"]) < config.rounds:
        row = _iterate_round(layout, config, seed, progress_data, workers, ray_address,
                             progress, log)
        log(f"round {row['round']}: collection with C + noise {row['collect_return']:.1f} over "
            f"{row['collected']} episodes"
            + (f" (M before the round predicted {row['m_predicted_return']:.1f} along them)"
               if row.get("m_predicted_return") is not None else "")
            + f"; dream best {row['best_fitness']:.1f}"
            + (f"; real check best {row['real_best']:.1f}, mean {row['real_mean']:.1f}"
               if row.get("real_best") is not None else ""))
    return _done("iterate", started,
                 f"iterate: {len(progress_data['rounds'])} rounds in {layout.experiment}",
                 [it.rounds_path(layout)], rounds=progress_data["rounds"])


def _iterate_round(layout, config, seed, progress_data, workers, ray_address, progress, log):
    """One round (or the rest of a killed one), step by step; returns its row."""
    from worldmodels import iterate as it

    number = len(progress_data["rounds"]) + 1
    current = progress_data["current"] or {"round": number, "step": "collect",
                                           "started": time.time()}
    progress_data["current"] = current
    row = current.setdefault("row", {"round": number})
    for step in it.STEPS[it.STEPS.index(current["step"]):]:
        log(f"== round {number}/{config.rounds}: {step}")
        step_started = time.time()
        if step == "collect":
            result = it.collect_round(layout, config, seed, progress_data, number, workers,
                                      ray_address, progress)
            row.update(collected=result["collected"],
                       collect_return=round(result["mean_return"], 1))
        elif step == "encode":
            for line in encode(layout, seed, force=True, progress=progress, log=log).lines():
                log(line)
            row["m_predicted_return"] = round(it.m_along_new_episodes(layout, row["collected"]), 1)
        elif step == "rnn":
            last = _rnn_round(layout, config, progress, log)
            row.update(rnn_loss=round(last["loss"], 3), rnn_reward=round(last["reward"], 3))
        else:
            fresh = current.get("controller_started") is None
            current["controller_started"] = time.time()
            it.save_progress(layout, progress_data)
            result = it.controller_round(layout, config, fresh, ray_address, progress)
            row.update({k: (round(v, 1) if v is not None else None) for k, v in result.items()})
            progress_data["controller_run_id"] = it.controller_run_id(layout)
            it.keep_round(layout, number)
        row[f"{step}_seconds"] = round(time.time() - step_started, 1)
        following = it.STEPS.index(step) + 1
        current["step"] = it.STEPS[following] if following < len(it.STEPS) else "done"
        it.save_progress(layout, progress_data)
    row["wall_seconds"] = round(time.time() - current["started"], 1)
    progress_data["rounds"].append(row)
    progress_data["current"] = None
    it.save_progress(layout, progress_data)
    return row


def _rnn_round(layout: Layout, config: IterateConfig, progress: bool, log) -> dict:
    """M trained ``rnn_epochs`` more epochs, from its checkpoint, on the new series."""
    from worldmodels.artifacts import start_manifest
    from worldmodels.store import require_series

    old = require_manifest(layout.rnn, "trained M", "train-rnn")
    series_manifest = require_manifest(layout.series_dir, "series", "encode")
    rnn_config = RnnConfig(**dict(old["config"], epochs=int(old["config"]["epochs"])
                                  + config.rnn_epochs))
    started = time.time()
    with stage_lock(layout.rnn, "iterate"), require_series(layout.series) as series:
        inputs = dict(old["inputs"], series=series_manifest["run_id"])
        manifest = start_manifest(layout.rnn, "train-rnn", to_dict(rnn_config), old["seed"],
                                  inputs)
        return fit_rnn(layout, series, rnn_config, old["seed"], manifest, started, progress,
                       lambda line: None)


PIPELINE = ("collect", "train-vae", "encode", "train-rnn", "train-controller", "iterate",
            "evaluate")
PER_VARIANT = ("train-controller", "evaluate")


def pipeline(layout: Layout, preset: Preset, seed: int = 0, preset_name: str = "small",
             variants=("zh",), redo: bool = False, progress: bool = True,
             log=say) -> StageResult:
    """collect, train-vae, encode, train-rnn, train-controller (dream), iterate (when the
    preset has rounds) and evaluate (real) for each of ``variants``, fidelity of the zh
    controller, then REPORT.md. Stages
    whose outputs are complete are skipped (``redo``: each is forced)."""
    started = time.time()
    check_seed(seed)
    run = {
        "collect": lambda v: collect(layout, preset.collect, seed, redo, None, progress, log),
        "train-vae": lambda v: train_vae(layout, preset.vae, seed, redo, False, progress, log),
        "encode": lambda v: encode(layout, seed, redo, False, progress, log),
        "train-rnn": lambda v: train_rnn(layout, preset.rnn, seed, redo, progress, log),
        "train-controller": lambda v: train_controller(layout, preset.controller, seed, v,
                                                       redo, None, progress, log),
        "iterate": lambda v: iterate(layout, preset.iterate, seed, None, None, progress, log),
        "evaluate": lambda v: evaluate(layout, preset.evaluate, seed, variant=v, force=redo,
                                       progress=progress, log=log),
        "fidelity": lambda v: fidelity(layout, preset.fidelity, seed, v, force=redo,
                                       progress=progress, log=log),
    }
    timings_path = layout.experiment / "pipeline.json"
    timings = read_json(timings_path) if timings_path.exists() else {}
    # The zh controller comes before iterate, which trains it (and M) further; the variants'
    # controllers are then trained in the final M's dream (zh's is complete and skipped).
    steps = [(stage, "zh") for stage in PIPELINE[:PIPELINE.index("train-controller")]]
    if "zh" in variants and preset.iterate.rounds > 0:
        steps += [("train-controller", "zh"), ("iterate", "zh")]
    steps += [(stage, variant) for variant in variants for stage in PER_VARIANT]
    if "zh" in variants:  # how far the final dream is from reality, for the report
        steps.append(("fidelity", "zh"))
    for stage, variant in steps:
        label = stage if variant == "zh" else f"{stage}-{variant}"
        log(f"== {label}")
        stage_started = time.time()
        result = run[stage](variant)
        for line in result.lines():
            log(line)
        if result.complete:
            log(f"== {label}: complete, skipped")
            continue
        timings[label] = round(time.time() - stage_started, 1)
        write_json(timings_path, {**timings, "preset": preset_name, "seed": seed})
    log(f"wrote {timings_path}")
    log("== report")
    written = report(layout, preset_name, log).written
    log(f"wrote {written[0]}")
    return _done("pipeline", started, f"pipeline ({preset_name}): done",
                 [timings_path, *written])
