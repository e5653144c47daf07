"""Iterative training, the paper's proposal for tasks whose first data cannot show everything:
each round collects episodes with the current controller plus exploration noise, adds them to
the experiment's rollouts, encodes the new episodes (the old ones are copied from the series),
trains M further on old + new data and evolves C further in the new M's dream. M then
learns what this controller's own driving does, so the exploits C found in the last dream stop
paying in the next one.

Every round continues the experiment's own runs: M from its checkpoint (``epochs`` grows by
``rnn_epochs``), C from its CMA-ES state (``generations`` grows by ``generations``). Each
step writes fresh manifests, so `evaluate` and `compare` work on the result as on any run.
The rounds' figures are kept in RESULTS/NAME/iterate/rounds.json (and .csv), which also
records where a killed run stopped: re-running the same command continues it."""

from __future__ import annotations

import time
from pathlib import Path

from worldmodels.config import (
    CollectConfig,
    ControllerConfig,
    IterateConfig,
    RnnConfig,
    ensemble_size,
    to_dict,
    validate,
)
from worldmodels.core.artifacts import (
    Layout,
    finish_manifest,
    read_json,
    require_manifest,
    stage_lock,
    start_manifest,
    write_csv,
    write_json,
)
from worldmodels.errors import WorldModelsError
from worldmodels.stages.base import StageResult, _done, _skipped, check_seed, say, setup_tensorflow
from worldmodels.stages.train import encode, fit_rnn

ITERATE_STAGE_KEY = 100  # + round: the tracks of each round's collection
STEPS = ("collect", "encode", "rnn", "controller")



def iterate(layout: Layout, config: IterateConfig, seed: int = 0, workers: int | None = None,
            ray_address: str | None = None, progress: bool = True, log=say) -> StageResult:
    """Rounds of iterative training of an experiment that has V, M and C (in the dream): each
    round collects with C + noise, re-encodes, trains M further and evolves C further; writes
    RESULTS/NAME/iterate/rounds.* and keeps each round's M and C in iterate/round-N/. A re-run
    continues a killed round; more rounds may be asked for later."""
    started = time.time()
    validate(config), check_seed(seed)
    if workers is not None:
        validate(CollectConfig(workers=workers))
    if config.rounds == 0:
        raise WorldModelsError("no rounds of iterative training asked for: give their number "
                               "(--rounds)")
    progress_data = load_progress(layout, config, seed)
    check_ready(layout, progress_data)
    check_controller(layout, progress_data)
    if len(progress_data["rounds"]) >= config.rounds:
        return _skipped("iterate", rounds_path(layout),
                        f"iterate: {len(progress_data['rounds'])} rounds complete in "
                        f"{rounds_path(layout)}; ask for more with --rounds")
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
                 [rounds_path(layout)], rounds=progress_data["rounds"])


def _iterate_round(layout, config, seed, progress_data, workers, ray_address, progress, log):
    """One round (or the rest of a killed one), step by step; returns its row."""
    number = len(progress_data["rounds"]) + 1
    current = progress_data["current"] or {"round": number, "step": "collect",
                                           "started": time.time()}
    progress_data["current"] = current
    row = current.setdefault("row", {"round": number})
    for step in STEPS[STEPS.index(current["step"]):]:
        log(f"== round {number}/{config.rounds}: {step}")
        step_started = time.time()
        if step == "collect":
            result = collect_round(layout, config, seed, progress_data, number, workers,
                                      ray_address, progress)
            row.update(collected=result["collected"],
                       collect_return=round(result["mean_return"], 1))
        elif step == "encode":
            for line in encode(layout, seed, force=True, progress=progress, log=log,
                               reuse=True).lines():
                log(line)
            row["m_predicted_return"] = round(m_along_new_episodes(layout, row["collected"]), 1)
        elif step == "rnn":
            last = _rnn_round(layout, config, progress, log)
            row["rnn_loss"] = round(last["loss"], 3)
            if "reward" in last:  # an env paid per step trains no reward head
                row["rnn_reward"] = round(last["reward"], 3)
        else:
            fresh = current.get("controller_started") is None
            current["controller_started"] = time.time()
            save_progress(layout, progress_data)
            result = controller_round(layout, config, fresh, ray_address, progress)
            row.update({k: (round(v, 1) if v is not None else None) for k, v in result.items()})
            progress_data["controller_run_id"] = controller_run_id(layout)
            keep_round(layout, number)
        row[f"{step}_seconds"] = round(time.time() - step_started, 1)
        following = STEPS.index(step) + 1
        current["step"] = STEPS[following] if following < len(STEPS) else "done"
        save_progress(layout, progress_data)
    row["wall_seconds"] = round(time.time() - current["started"], 1)
    progress_data["rounds"].append(row)
    progress_data["current"] = None
    save_progress(layout, progress_data)
    return row


def _rnn_round(layout: Layout, config: IterateConfig, progress: bool, log) -> dict:
    """M trained ``rnn_epochs`` more epochs, from its checkpoint, on the new series."""
    from worldmodels.core.artifacts import start_manifest
    from worldmodels.data.store import require_series

    series_manifest = require_manifest(layout.series_dir, "series", "encode")
    started = time.time()
    with stage_lock(layout.rnn, "iterate"), require_series(layout.series) as series:
        manifest = _killed_run(layout.rnn, "train-rnn", "series", series_manifest["run_id"])
        if manifest is None:
            old = require_manifest(layout.rnn, "trained M", "train-rnn")
            config_now = to_dict(RnnConfig(**dict(
                old["config"], epochs=int(old["config"]["epochs"]) + config.rnn_epochs)))
            manifest = start_manifest(layout.rnn, "train-rnn", config_now, old["seed"],
                                      dict(old["inputs"], series=series_manifest["run_id"]))
        return fit_rnn(layout, series, RnnConfig(**manifest["config"]), manifest["seed"],
                       manifest, started, progress, lambda line: None)


def _killed_run(directory: Path, stage: str, input_name: str, input_run_id: str) -> dict | None:
    """The unfinished run a killed round left in ``directory`` (its M or C, trained further
    from the round's new ``input_name``), which the step continues from its checkpoint; None
    when the run there is complete (the step starts it)."""
    from worldmodels.core.artifacts import read_manifest

    manifest = read_manifest(directory, stage)
    if manifest["status"] == "complete":
        return None
    if manifest["inputs"].get(input_name) != input_run_id:
        raise WorldModelsError(
            f"{directory} holds an unfinished {stage} run that is not this round's (it was "
            f"started on another {input_name}): finish it with `worldmodels {stage}`, or "
            f"remove {directory.parent / 'iterate'} to start the rounds over")
    return manifest



def rounds_path(layout: Layout) -> Path:
    return layout.experiment / "iterate" / "rounds.json"


def load_progress(layout: Layout, config: IterateConfig, seed: int) -> dict:
    """The progress of the iterate run in ``layout``, or a new one. A run is continued only with
    the same settings per round; more rounds may be asked for later."""
    path = rounds_path(layout)
    settings = {"episodes": config.episodes, "noise": config.noise,
                "rnn_epochs": config.rnn_epochs, "generations": config.generations,
                "seed": seed}
    if path.exists():
        progress = read_json(path)
        if progress["settings"] != settings:
            raise WorldModelsError(
                f"{path} holds rounds run with other settings ({progress['settings']}): use "
                "the same --episodes, --noise, --rnn-epochs, --generations and --seed, or "
                "another --name"
            )
        return progress
    from worldmodels.data.store import list_episodes

    base = len(list_episodes(layout.rollouts))
    return {"settings": settings, "base": base, "rounds": [], "current": None,
            "controller_run_id": controller_run_id(layout)}


def controller_run_id(layout: Layout) -> str:
    return read_json(layout.controller("dream") / "manifest.json")["run_id"]


def check_controller(layout: Layout, progress_data: dict) -> None:
    """Refuse to continue rounds whose controller was since replaced (e.g. by
    `train-controller --force`): the rounds would no longer describe the controller."""
    current = progress_data["current"]
    if current is not None and current["step"] == "controller":
        return  # killed while evolving C: its manifest is this round's own
    recorded = progress_data.get("controller_run_id")
    if recorded is not None and recorded != controller_run_id(layout):
        raise WorldModelsError(
            f"the controller in {layout.controller('dream')} is not the one "
            f"{rounds_path(layout)} left (it was trained again since): use another --name, "
            f"or remove {rounds_path(layout).parent} to start the rounds over"
        )


def round_seeds(seed: int, round_number: int, episodes: int) -> list[int]:
    from worldmodels.data.collect import episode_seeds

    return episode_seeds(seed, episodes, ITERATE_STAGE_KEY + round_number)


def collect_round(layout: Layout, config: IterateConfig, seed: int, progress_data: dict,
                  round_number: int, workers, ray_address, progress: bool) -> dict:
    """Episodes of the current best controller plus noise, added to the rollouts."""
    from worldmodels.model.world import load_world

    world = load_world(layout, need_vae=True)
    with stage_lock(layout.rollouts, "iterate"):
        return _collect_round(layout, config, seed, progress_data, round_number, workers,
                              ray_address, progress, world)


def _collect_round(layout, config, seed, progress_data, round_number, workers, ray_address,
                   progress, world) -> dict:
    from worldmodels.model.agent import collect_with_controller
    from worldmodels.model.controller import Controller
    from worldmodels.scoring.evaluation import load_controller

    spec = Controller("zh", world.z_size, world.hidden_size, world.env_id)
    params = load_controller(layout.controller("dream") / "best.npy", spec)
    first = progress_data["base"] + (round_number - 1) * config.episodes
    result = collect_with_controller(
        layout.rollouts, world, spec, params, round_seeds(seed, round_number, config.episodes),
        first, config.noise, world_max_steps(layout),
        label=f"controller+noise(round {round_number})", workers=workers,
        ray_address=ray_address, progress=progress)
    manifest = read_json(layout.rollouts / "manifest.json")
    manifest.setdefault("iterate", {})[str(round_number)] = {
        "episodes": config.episodes, "first_index": first, "noise": config.noise,
        "controller": str(layout.controller("dream") / "best.npy"), **result}
    write_json(layout.rollouts / "manifest.json", manifest)
    return result


def m_along_new_episodes(layout: Layout, count: int) -> float:
    """The return M (as it was before this round trains it) predicts along the ``count``
    episodes just collected, read with their real z (V's mean) and actions: `fidelity`'s
    "predicted along the real path", for free, beside the return the env paid (the round's
    ``collect_return``). Where M overpays the current controller's own driving, the gap
    says by how much; the round's training should close it."""
    import numpy as np
    import tensorflow as tf

    from worldmodels.data.store import read_windows, require_series
    from worldmodels.model.rnn import load_rnn
    from worldmodels.model.world import experiment_env

    rnn_manifest = require_manifest(layout.rnn, "trained M", "train-rnn")
    z_size = int(rnn_manifest["inputs"]["z_size"])
    rnn = load_rnn(layout.rnn, z_size, rnn_manifest["config"],
                   rnn_manifest["inputs"].get("action_size", 3))
    with require_series(layout.series) as series:
        total = len(series["lengths"])
        indices = list(range(total - count, total))
        length = int(max(series["lengths"][i] for i in indices))
        window = read_windows(series, indices, [0] * count, length)
    inputs = np.concatenate([window["mu"][:, :-1], window["actions"]], axis=-1)
    predictions, _ = rnn(tf.constant(inputs, tf.float32))
    env = experiment_env(layout)
    if env.step_reward is None:
        predicted = (predictions["reward"].numpy() * window["mask"]).sum(axis=1)
        return float(predicted.mean())
    # An env that pays per step survived (TakeCover): the dream pays until M's done head
    # passes its threshold, so M's return along the path is where it would end it.
    ended = (tf.sigmoid(predictions["done_logit"]).numpy() > env.done_threshold) \
        & (window["mask"] > 0)
    lengths = window["mask"].sum(axis=1)
    steps = np.where(ended.any(axis=1), ended.argmax(axis=1) + 1, lengths)
    return float(env.step_reward * steps.mean())


def world_max_steps(layout: Layout) -> int:
    return int(read_json(layout.rollouts / "manifest.json")["config"]["max_steps"])


def controller_round(layout: Layout, config: IterateConfig, fresh: bool, ray_address,
                     progress: bool) -> dict:
    """C evolved ``generations`` more generations in the new M's dream, CMA-ES continuing from
    its state. ``fresh``: the round's first attempt, so the best-so-far (scored in the last
    round's dream) is forgotten and the best is chosen again in the new dream."""
    directory = layout.controller("dream")
    with stage_lock(directory, "iterate"):
        return _controller_round(layout, config, fresh, ray_address, progress)


def _controller_round(layout: Layout, config: IterateConfig, fresh: bool, ray_address,
                      progress: bool) -> dict:
    from worldmodels.core.figures import plot_controller_history
    from worldmodels.model.controller import Controller
    from worldmodels.model.evolution import adopt_state, load_state
    from worldmodels.model.world import load_world
    from worldmodels.scoring.scorers import evolve_controller

    directory = layout.controller("dream")
    rnn = require_manifest(layout.rnn, "trained M", "train-rnn")
    started = time.time()
    manifest = _killed_run(directory, "train-controller", "rnn", rnn["run_id"])
    old = manifest or require_manifest(directory, "controller trained in the dream",
                                       "train-controller")
    state = load_state(directory)
    if state is None or state.run_id != old["run_id"]:
        raise WorldModelsError(f"no CMA-ES state of the controller in {directory}: re-run "
                               "`worldmodels train-controller --force`")
    if manifest is None:  # the step starts: CMA-ES goes on from the last run's state
        config_now = to_dict(ControllerConfig(**dict(
            old["config"], generations=int(old["config"]["generations"]) + config.generations)))
        manifest = start_manifest(directory, "train-controller", config_now, old["seed"],
                                  dict(old["inputs"], rnn=rnn["run_id"]))
        adopt_state(directory, state, manifest["run_id"], forget_best=fresh)
    controller_config = ControllerConfig(**manifest["config"])
    inputs = manifest["inputs"]
    checking = controller_config.real_every > 0
    world = load_world(layout, need_vae=checking, burn_in=controller_config.burn_in)
    spec = Controller(inputs["variant"], world.z_size, world.hidden_size,
                      world.env_id)
    history = evolve_controller(world, controller_config, manifest["seed"], directory, spec,
                                ray_address, progress)
    plot_controller_history(history, directory / "history.png",
                            f"C ({spec.variant}) trained in the dream, iterated", "dream")
    best = max(row["best_so_far"] for row in history[-config.generations:])
    finish_manifest(directory, manifest, wall_seconds=time.time() - started,
                    parameters=spec.param_count, best_fitness=best,
                    final_mean=history[-1]["mean"])
    checks = [row for row in history if row.get("real_best") not in (None, "")]
    return {"best_fitness": best, "final_mean": history[-1]["mean"],
            "real_best": checks[-1]["real_best"] if checks else None,
            "real_mean": checks[-1]["real_mean"] if checks else None}


def keep_round(layout: Layout, round_number: int) -> Path:
    """Copy the M and C a round ended with to RESULTS/NAME/iterate/round-N/ (a few MB), so any
    round can be evaluated later (`evaluate --round N`) after later rounds trained them on."""
    from worldmodels.core.artifacts import copy_file

    kept = layout.at_round(round_number)
    members = ensemble_size(require_manifest(layout.rnn, "trained M", "train-rnn"), layout.rnn)
    for source, target, names in (
            (layout.rnn, kept.rnn, ("manifest.json", "rnn.weights.h5", "metrics.csv")),
            *((layout.rnn_member(k), kept.rnn_member(k), ("rnn.weights.h5", "metrics.csv"))
              for k in range(1, members)),
            (layout.controller("dream"), kept.controller("dream"),
             ("manifest.json", "best.npy", "mean.npy", "history.csv"))):
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            copy_file(source / name, target / name)
    return kept.runs


def save_progress(layout: Layout, progress_data: dict) -> None:
    path = rounds_path(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, progress_data)
    if progress_data["rounds"]:
        write_csv(path.with_suffix(".csv"), progress_data["rounds"])
        write_round_events(path.parent, progress_data["rounds"])


def write_round_events(directory: Path, rounds: list[dict]) -> None:
    """Every round's figures as TensorBoard scalars at step = round, written afresh each time
    (a handful of rows), so they always match rounds.csv."""
    from worldmodels.core import tensorboard

    tensorboard.clear(directory)
    with tensorboard.Board(directory) as board:
        for row in rounds:
            board.scalars({k: v for k, v in row.items() if k != "round"}, row["round"],
                          prefix="iterate/")


def check_ready(layout: Layout, progress_data: dict) -> None:
    """Refuse to start before the experiment has everything a round continues. The series, M
    or C that a killed round was making is unfinished: that step makes it again or continues
    it."""
    step = (progress_data["current"] or {}).get("step")
    require_manifest(layout.rollouts, "rollouts", "collect")
    require_manifest(layout.vae, "trained V", "train-vae")
    if step != "encode":  # a killed encode left the series before intact (it writes aside)
        require_manifest(layout.series_dir, "series", "encode")
    if step != "rnn":
        require_manifest(layout.rnn, "trained M", "train-rnn")
    if step != "controller":
        require_manifest(layout.controller("dream"), "controller trained in the dream",
                         "train-controller")
