"""The training stages, in pipeline order: collect, train-vae, encode, train-rnn,
train-controller."""

from __future__ import annotations

import time
from pathlib import Path

from worldmodels.config import (
    CONTROLLER_VARIANTS,
    ENV_ID,
    CollectConfig,
    ControllerConfig,
    RnnConfig,
    VaeConfig,
    member_seed,
    mixture_members,
    to_dict,
    validate,
)
from worldmodels.core.artifacts import (
    Layout,
    ensure_writable,
    finish_manifest,
    refuse_link,
    require_manifest,
)
from worldmodels.envs import check_env_id, get_env
from worldmodels.errors import WorldModelsError
from worldmodels.stages.base import (
    StageResult,
    _begin,
    _complete,
    _done,
    _iterated,
    _owned_by_round,
    _reads,
    _stale,
    check_seed,
    say,
    setup_tensorflow,
)


def collect(layout: Layout, config: CollectConfig, seed: int = 0, force: bool = False,
            ray_address: str | None = None, progress: bool = True, log=say) -> StageResult:
    """Rollouts of the real env with an exploration policy into DATA/NAME/rollouts."""
    from worldmodels.data.collect import collect as run_collect
    from worldmodels.data.store import list_episodes, validate_episodes

    started = time.time()
    validate(config), check_seed(seed), check_env_id(config.env_id)
    env = get_env(config.env_id)
    if any(policy not in env.policies for policy in mixture_members(config.policy)):
        raise WorldModelsError(f"policy {config.policy!r} does not play {env.id}; choose one of "
                               f"{', '.join(env.policies)} (or several joined by +)")
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
    from worldmodels.core import checkpoint
    from worldmodels.data.store import episode_length, require_episodes, validate_episodes

    started = time.time()
    validate(config), check_seed(seed)
    paths = require_episodes(layout.rollouts)
    rollouts = require_manifest(layout.rollouts, "rollouts", "collect")
    if config.max_episodes:
        paths = paths[: config.max_episodes]
    paths = validate_episodes(paths, skip_corrupt, warn=log)
    ensure_writable(layout.vae)
    current = {"rollouts": rollouts["run_id"]}
    force = force or _stale(layout.vae, "train-vae", current, log)
    if done := _complete(layout.vae, "train-vae", force, to_dict(config), seed, current):
        return done
    setup_tensorflow(seed)
    from worldmodels.model.vae import ConvVAE, read_episode, reconstruction_grid
    from worldmodels.model.vae import train_vae as fit

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
           progress: bool = True, log=say, reuse: bool = False) -> StageResult:
    """mu and logvar of every frame of DATA/NAME/rollouts, into DATA/NAME/series/series.h5.
    With ``reuse`` (`iterate`'s rounds), the episodes the series already holds, encoded by the
    same V, are copied from it and only the new ones are encoded."""
    from worldmodels.data.store import require_episodes, validate_episodes

    started = time.time()
    check_seed(seed)
    paths = require_episodes(layout.rollouts)
    rollouts = require_manifest(layout.rollouts, "rollouts", "collect")
    vae = require_manifest(layout.vae, "trained V", "train-vae")
    paths = validate_episodes(paths, skip_corrupt, warn=log)
    ensure_writable(layout.series_dir)
    current = {"rollouts": rollouts["run_id"], "vae": vae["run_id"]}
    force = force or _stale(layout.series_dir, "encode", current, log)
    if done := _complete(layout.series_dir, "encode", force,
                         {"z_size": int(vae["config"]["z_size"])}, seed, current):
        return done
    setup_tensorflow(seed)
    from worldmodels.model.vae import encode_series, load_vae

    model = load_vae(layout.vae, vae["config"]["z_size"])
    inputs = {"rollouts": rollouts["run_id"], "vae": vae["run_id"], "episodes": len(paths)}
    manifest = _begin(layout.series_dir, "encode", {"z_size": model.z_size}, seed, inputs,
                      force, log, clear=lambda: layout.series.with_name(
                          layout.series.name + ".partial").unlink(missing_ok=True))
    action_size = get_env(rollouts["config"].get("env_id", ENV_ID)).action_size
    result = encode_series(model, paths, layout.series, vae["run_id"], progress=progress,
                           action_size=action_size, reuse=reuse)
    finish_manifest(layout.series_dir, manifest, wall_seconds=time.time() - started, **result)
    copied = (f" ({result['copied']} copied from the series before, encoded by the same V)"
              if result["copied"] else "")
    return _done("encode", started,
                 f"encode: {result['episodes']} episodes, {result['frames']:,} frames{copied}",
                 [layout.series], **result)


@_reads("train-rnn", lambda a: [a["layout"].vae, a["layout"].series_dir])
def train_rnn(layout: Layout, config: RnnConfig, seed: int = 0, force: bool = False,
              progress: bool = True, log=say) -> StageResult:
    """M trained on DATA/NAME/series, into RESULTS/NAME/rnn."""
    from worldmodels.data.store import require_series

    started = time.time()
    validate(config), check_seed(seed)
    series_manifest = require_manifest(layout.series_dir, "series", "encode")
    vae = require_manifest(layout.vae, "trained V", "train-vae")
    if series_manifest["inputs"]["vae"] != vae["run_id"]:
        raise WorldModelsError(f"the series in {layout.series_dir} was made by another V than "
                               f"{layout.vae}: re-run `worldmodels encode`")
    ensure_writable(layout.rnn)
    current = {"series": series_manifest["run_id"], "vae": vae["run_id"]}
    force = force or _stale(layout.rnn, "train-rnn", current, log)
    further = None if force else _trained_further(layout, config, seed)
    if further is None and (done := _complete(layout.rnn, "train-rnn", force, to_dict(config),
                                              seed, current)):
        return done
    setup_tensorflow(seed)
    with require_series(layout.series) as series:
        z_size = int(series.attrs["z_size"])
        inputs = {"series": series_manifest["run_id"], "vae": vae["run_id"], "z_size": z_size,
                  "action_size": int(series["actions"].shape[2])}
        if further is not None:
            manifest = _continue_rnn(layout, config, further, log)
        else:
            manifest = _begin(layout.rnn, "train-rnn", to_dict(config), seed, inputs, force,
                              log, clear=lambda: _clear_rnn(layout))
        last = fit_rnn(layout, series, config, seed, manifest, started, progress, log)
    return _done("train-rnn", started,
                 f"train-rnn: {config.epochs} epochs, loss {last['loss']:.3f} ("
                 + ", ".join(f"{k} {v:.3f}" for k, v in last.items() if k != "loss") + ")",
                 [layout.rnn / f for f in ("rnn.weights.h5", "manifest.json", "metrics.csv")],
                 **last)


def _trained_further(layout: Layout, config: RnnConfig, seed: int) -> dict | None:
    """The complete M that ``config`` asks to train for more epochs, and nothing else changed
    (the same seed, inputs and other options, no round of `iterate` on it, every member's
    checkpoint at its last epoch): its manifest, which ``_continue_rnn`` continues from its
    checkpoint. None otherwise (the stage is then complete, resumed or started as usual).
    Every epoch's windows derive from (seed, epoch) and the learning rate is constant, so 20
    epochs then 10 more train M as 30 epochs from the start would."""
    from worldmodels.core import checkpoint
    from worldmodels.core.artifacts import read_json

    old = _asks_more(layout.rnn, "train-rnn", config, seed, None, "epochs")
    if old is None:
        return None
    epochs = old["config"]["epochs"]
    for member in range(config.members):
        progress = layout.rnn_member(member) / checkpoint.NAME / "progress.json"
        if not progress.is_file() or read_json(progress).get("epoch") != epochs:
            return None  # no checkpoint to go on from: --force trains it anew
    return old


def _asks_more(directory: Path, stage: str, config, seed: int, inputs: dict | None,
               field: str) -> dict | None:
    """The manifest of the complete run in ``directory`` that ``config`` differs from only by a
    larger ``field`` (epochs, generations), with the same seed and ``inputs`` (None: not
    compared) and no round of `iterate` on it; None otherwise."""
    from worldmodels.core.artifacts import options_differ, read_json

    path = directory / "manifest.json"
    if not path.exists():
        return None
    old = read_json(path, f"add --force to `worldmodels {stage}` to start the stage over")
    if (old.get("status") != "complete" or _iterated(directory, stage)
            or options_differ(old, to_dict(config), seed,
                              old.get("inputs", {}) if inputs is None else inputs)
            != [f"config.{field}"]):
        return None
    before = old["config"][field]
    return old if isinstance(before, int) and getattr(config, field) > before else None


def _continue(directory: Path, stage: str, config: dict, old: dict, log, says: str) -> dict:
    """Start training the complete run ``old`` in ``directory`` further, under the stage's
    lock: a new run (its own run id, so what was scored or trained on the old one is stale)
    with ``config`` and the old seed and inputs; its training goes on from what the old run
    left (M's checkpoints, C's CMA-ES state). ``says``: the line that tells the user so."""
    from worldmodels.core.artifacts import lock_stage, read_json, release_stage, start_manifest

    lock_stage(directory, stage)
    try:
        if read_json(directory / "manifest.json").get("run_id") != old["run_id"]:
            raise WorldModelsError(f"{directory} changed while {stage} started: run it again")
        log(says)
        return start_manifest(directory, stage, config, old["seed"], old["inputs"])
    except BaseException:
        release_stage(directory)
        raise


def _continue_rnn(layout: Layout, config: RnnConfig, old: dict, log) -> dict:
    """The manifest of the complete M ``old`` trained further, to ``config.epochs``, resumed
    from each member's checkpoint by ``fit_rnn``."""
    return _continue(layout.rnn, "train-rnn", to_dict(config), old, log,
                     f"train-rnn: training the complete {old['config']['epochs']}-epoch M in "
                     f"{layout.rnn} further, to {config.epochs} epochs, from its checkpoint "
                     "(--force starts it over)")


def _clear_rnn(layout: Layout) -> None:
    """M's checkpoints and its ensemble members (for --force, holding the stage's lock)."""
    import shutil

    from worldmodels.core import checkpoint

    checkpoint.clear(layout.rnn)
    for path in layout.rnn.glob("member-*"):
        if path.is_symlink() or not path.is_dir():
            path.unlink()  # a link only, never what it points to
        else:
            shutil.rmtree(path)


def fit_rnn(layout: Layout, series, config: RnnConfig, seed: int, manifest: dict,
            started: float, progress: bool, log=say) -> dict:
    """Build M for the series, train it (from its checkpoint when there is one) and mark its
    manifest complete; returns the last epoch's losses. Shared by train-rnn and iterate."""
    import keras

    from worldmodels.model.rnn import MDNRNN, REFERENCE_PARAMETERS
    from worldmodels.model.rnn import train_rnn as fit

    lasts = []
    for member in range(config.members):
        # Each member starts from its own seed, as if trained alone by `--seed member_seed`.
        own_seed = member_seed(seed, member)
        keras.utils.set_random_seed(own_seed)
        model = MDNRNN(int(series.attrs["z_size"]), config.hidden_size, config.mixtures,
                       config.dropout, action_size=int(series["actions"].shape[2]))
        if member == 0:
            heads = model.reward_head.count_params() + model.done_head.count_params()
            log(f"M: MDN-RNN with {model.count_params():,} parameters "
                f"({model.count_params() - heads:,} without the reward and done heads; "
                f"reference {REFERENCE_PARAMETERS:,}), {len(series['lengths'])} episodes"
                + (f"; an ensemble of {config.members}" if config.members > 1 else ""))
        else:
            log(f"M: ensemble member {member} of {config.members - 1} (seed {own_seed})")
        directory = refuse_link(layout.rnn_member(member))
        directory.mkdir(exist_ok=True)
        lasts.append(fit(model, series, config, own_seed, directory, progress=progress)[-1])
    members = ({"member_losses": [round(last["loss"], 4) for last in lasts]}
               if config.members > 1 else {})
    finish_manifest(layout.rnn, manifest, wall_seconds=time.time() - started,
                    parameters=model.count_params(), **lasts[0], **members)
    return lasts[0]


def _controller_inputs(layout: Layout, variant: str) -> dict:
    from worldmodels.model.world import check_world

    vae_manifest, rnn_manifest = check_world(layout)
    return {"vae": vae_manifest["run_id"], "rnn": rnn_manifest["run_id"],
            "z_size": int(rnn_manifest["inputs"]["z_size"]),
            "hidden_size": int(rnn_manifest["config"]["hidden_size"]), "variant": variant}


def _clear_controller(directory: Path) -> None:
    from worldmodels.model.evolution import clear_state

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
    from worldmodels.model.controller import Controller
    from worldmodels.model.world import load_world
    from worldmodels.scoring.scorers import describe_training, evolve_controller

    started = time.time()
    validate(config), check_seed(seed)
    if variant not in CONTROLLER_VARIANTS:
        raise WorldModelsError(f"unknown variant {variant!r}; choose from "
                               f"{', '.join(CONTROLLER_VARIANTS)}")
    checking = config.where == "dream" and config.real_every > 0
    if ray_address and not (config.where == "real" or checking):
        raise WorldModelsError("--ray-address runs only with --where real or with real checks")
    directory = layout.controller(config.where, variant)
    ensure_writable(directory)
    if not force and (owned := _owned_by_round(directory, "train-controller")):
        return owned
    inputs = _controller_inputs(layout, variant)
    current = {name: inputs[name] for name in ("vae", "rnn")}
    force = force or _stale(directory, "train-controller", current, log)
    further = None if force else _evolved_further(directory, config, seed, inputs)
    if further is None and (done := _complete(directory, "train-controller", force,
                                              to_dict(config), seed, current)):
        return done
    setup_tensorflow(seed, threads=1 if config.where == "real" else None)
    world = load_world(layout, need_vae=(config.where == "real" or checking),
                       burn_in=config.burn_in if config.where == "dream" else 0)
    if further is not None:
        manifest = _continue_controller(directory, config, *further, log)
    else:
        # With force, the outputs go only now (every check above has passed), under the lock.
        manifest = _begin(directory, "train-controller", to_dict(config), seed, inputs, force,
                          log, clear=lambda: _clear_controller(directory))
    spec = Controller(variant, world.z_size, world.hidden_size, world.env_id)
    for line in describe_training(spec, config):
        log(line)
    if len(world.rnns) > 1 and config.where == "dream":
        log(f"C: dreams dealt out in turn among an ensemble of {len(world.rnns)} Ms")
    history = evolve_controller(world, config, seed, directory, spec, ray_address, progress)
    from worldmodels.core.figures import plot_controller_history

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


def _evolved_further(directory: Path, config: ControllerConfig, seed: int,
                     inputs: dict) -> tuple | None:
    """The complete C that ``config`` asks to evolve for more generations, and nothing else
    changed (the same seed, M, V and other options, no round of `iterate` on it, its CMA-ES
    state at its last generation): its manifest and that state, which
    ``_continue_controller`` goes on from. None otherwise (complete, resumed or started as
    usual). CMA-ES's every draw and every generation's dreams derive from the seed and the
    generation, so 60 generations then 40 more evolve C as 100 from the start would; the one
    difference is a real check (`real_every`) at the old last generation when it was not one
    of the longer run's."""
    from worldmodels.model.evolution import load_state

    old = _asks_more(directory, "train-controller", config, seed, inputs, "generations")
    if old is None:
        return None
    state = load_state(directory)
    if (state is None or state.run_id != old["run_id"]
            or len(state.history) != old["config"]["generations"]):
        return None  # no state to go on from: --force evolves it anew
    return old, state


def _continue_controller(directory: Path, config: ControllerConfig, old: dict, state,
                         log) -> dict:
    """The manifest of the complete C ``old`` evolved further, to ``config.generations``: the
    new run adopts the old run's CMA-ES state (its history and best so far kept), from which
    ``evolve`` goes on."""
    from worldmodels.model.evolution import adopt_state

    manifest = _continue(directory, "train-controller", to_dict(config), old, log,
                         f"train-controller: evolving the complete "
                         f"{old['config']['generations']}-generation C in {directory} further, "
                         f"to {config.generations} generations, from its CMA-ES state (--force "
                         "starts it over)")
    adopt_state(directory, state, manifest["run_id"])
    return manifest
