"""Evaluation of a trained agent over many episodes, in the real env or in the dream."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from worldmodels.config import DreamSpec, EvaluateConfig
from worldmodels.core.artifacts import VERSION, Layout, code_commit, read_json, write_json
from worldmodels.core.device import device_name
from worldmodels.core.tensorboard import Board
from worldmodels.data.collect import episode_seeds
from worldmodels.errors import WorldModelsError
from worldmodels.model.controller import Controller
from worldmodels.model.world import World, load_world
from worldmodels.scoring.scorers import EVALUATE_STAGE_KEY, DreamScorer, RealScorer

SELECTED = "selected"  # --params selected: the candidate `worldmodels select` chose
SELECTION = "selection.json"  # beside it in the controller's folder: how it was chosen


def evaluate(layout: Layout, controller_manifest: dict, directory: Path, params_name: str,
             where: str, config: EvaluateConfig, seed: int, progress: bool = True,
             partial_path: Path | None = None, variant: str = "zh",
             ray_address: str | None = None, judge: Layout | None = None, *,
             name: str) -> dict:
    """Scores of the controller over ``config.episodes`` episodes on tracks (or dreams) seeded
    from ``seed``, disjoint from collection and training seeds. In the real env, each finished
    episode is saved to ``partial_path`` and a re-run skips the episodes found there. With a
    ``judge`` (an experiment of the same V), C is dreamt in the judge's M instead of its own:
    does C's dream score hold in an M it was not evolved in? ``name``: the result file's stem,
    which tags its TensorBoard events."""
    world, spec, flat, dreamt = load_trained(layout, controller_manifest, directory,
                                             params_name, variant,
                                             need_vae=(where == "real"),
                                             dreams=(where == "dream"))
    burn_in = world.burn_in
    params = np.repeat(flat[None], config.episodes, axis=0).astype(np.float32)
    seeds = episode_seeds(seed, config.episodes, EVALUATE_STAGE_KEY)
    result = {"env": world.env_id, "where": where, "episodes": config.episodes,
              "controller": layout.controller_name(directory), "params": params_name,
              "variant": variant,
              # Real scores depend on float-level details of the code: say which code and
              # which trained controller made them.
              "controller_run_id": controller_manifest.get("run_id"),
              "controller_seed": controller_manifest.get("seed"), "version": VERSION,
              "code": code_commit(), "seeds": seeds}
    if where == "dream":
        judged = world if judge is None else judge_world(judge, world, dreamt)
        scorer = DreamScorer(judged, dreamt, seed, spec, config.temperature, config.max_steps)
        scores, lengths = scorer.run(params, call_seed=EVALUATE_STAGE_KEY)
        # Dreams have no tracks: their starts and noise all derive from the run seed.
        result.update(temperature=scorer.temperature, lengths=lengths.tolist(), seeds=[seed],
                      burn_in=burn_in, dropout=dreamt.dropout,
                      action_noise=dreamt.action_noise)
        if judge is not None:
            result["judge"] = {"rnn": str(judge.rnn),
                               "rnn_run_id": judged.rnn_manifest["run_id"]}
    else:
        scores, lengths = evaluate_real(world, params, seeds, config, seed, progress,
                                        partial_path, spec, ray_address)
        result.update(noise=config.noise, lengths=lengths)
    scores = np.asarray(scores, dtype=float)
    result.update(mean=float(scores.mean()), std=float(scores.std()), scores=scores.tolist(),
                  device=device_name())
    write_events(layout, name, result)
    return result


def write_events(layout: Layout, name: str, result: dict) -> None:
    """The returns (histogram), lengths and mean of an evaluation as TensorBoard events in
    RESULTS/NAME/evaluate/tensorboard/, tagged with the evaluation's file name, at step N for
    the M and C kept after `iterate`'s round N (0: the experiment's own)."""
    with Board((Path(layout.outputs) if layout.outputs else layout.experiment) / "evaluate") \
            as board:
        board.scalars({"mean": result["mean"]}, layout.round, prefix=f"{name}/")
        board.histogram(f"{name}/returns", result["scores"], layout.round)
        board.histogram(f"{name}/lengths", result["lengths"], layout.round)


def evaluate_real(world, params, seeds, config, seed, progress, partial_path, spec,
                  ray_address, desc: str = "evaluate") -> tuple[list, list]:
    """Returns and lengths of the real episodes of ``params`` (one row per episode) on the
    tracks of ``seeds`` (``config``: env_id, max_steps, workers, noise), resuming from
    ``partial_path``."""
    digest = hashlib.sha256(np.ascontiguousarray(params, np.float32).tobytes()).hexdigest()
    key = {"seeds": seeds, "params": digest}
    done, lengths = {}, {}
    if partial_path is not None and Path(partial_path).exists():
        partial = read_json(partial_path)
        if partial.get("key") == key and "lengths" in partial:
            done = {int(i): score for i, score in partial["scores"].items()}
            lengths = {int(i): steps for i, steps in partial["lengths"].items()}

    def save(index, score):
        done[index] = score
        if partial_path is not None:
            write_json(partial_path, {"key": key, "scores": done, "lengths": lengths})

    scores = run_real(world, spec, params, seeds, config, seed, progress, desc,
                      dict(done), save, ray_address, config.noise, on_length=lengths.__setitem__)
    return scores, [lengths[i] for i in range(len(seeds))]


def run_real(world, spec, params, seeds, config, seed, progress, desc, done, on_episode,
             ray_address: str | None = None, noise: float = 0.0, on_length=None):
    """Episodes of ``params`` on the tracks of ``seeds`` (``config``: env_id, max_steps,
    workers), with Gaussian action ``noise``, on local worker processes, or on Ray with
    ``ray_address``; episodes in ``done`` are not run again. ``on_episode`` and ``on_length``:
    as in ``worldmodels.model.agent.run_real_episodes``."""
    from worldmodels.core.workers import make_backend
    from worldmodels.model.agent import episode_tasks

    tasks = len(episode_tasks(len(seeds)))
    with make_backend(config.workers, ray_address, tasks) as backend:
        scorer = RealScorer(world, backend, seed, config.max_steps,
                            progress=progress, controller=spec,
                            noise=noise)
        return scorer.run(params, seeds, desc=desc, done=done, on_episode=on_episode,
                          on_length=on_length)


def load_trained(layout: Layout, controller_manifest: dict, directory: Path, params_name: str,
                 variant: str, need_vae: bool, dreams: bool
                 ) -> tuple[World, Controller, np.ndarray, DreamSpec]:
    """The world a trained controller drives, the controller's shape, its parameters and how
    it was dreamt: refuses a controller trained with another M or of another shape. With
    ``dreams``, the ``DreamSpec`` is the one C was trained in (read from its manifest) and the
    world's dreams start as they did then (after the same burn-in); without, every dream
    option is off (the world does not dream)."""
    dreamt = DreamSpec.from_manifest(controller_manifest) if dreams else DreamSpec()
    world = load_world(layout, need_vae=need_vae, burn_in=dreamt.burn_in)
    if controller_manifest["inputs"].get("rnn") != world.rnn_manifest["run_id"]:
        raise WorldModelsError(
            f"the controller in {directory} was trained with another M than {layout.rnn}: "
            "re-run `worldmodels train-controller`"
        )
    if params_name == SELECTED:
        check_selection(directory, controller_manifest)
    spec = Controller(variant, world.z_size, world.hidden_size, world.env_id)
    return world, spec, load_controller(Path(directory) / f"{params_name}.npy", spec), dreamt


def judge_world(judge: Layout, world: World, dreamt: DreamSpec) -> World:
    """The world of the judge's M (its own checks refuse an M of another V than the judge's),
    refused unless it dreams in C's latent space: an M of the same V as ``world``'s, of the
    same z and hidden sizes."""
    judged = load_world(judge, need_vae=False, burn_in=dreamt.burn_in)
    if judged.rnn_manifest["inputs"].get("vae") != world.rnn_manifest["inputs"].get("vae"):
        raise WorldModelsError(f"the judge's M in {judge.rnn} was trained on another V than the "
                               "M C was evolved in: its z would mean other things")
    if (judged.z_size, judged.hidden_size) != (world.z_size, world.hidden_size):
        raise WorldModelsError(f"the judge's M in {judge.rnn} has another shape than the M C "
                               "was evolved in")
    return judged


def check_selection(directory: Path, controller_manifest: dict) -> dict:
    """The selection `worldmodels select` made for this run of the controller; a one-line
    error when there is none or it chose among an earlier run's candidates."""
    path = Path(directory) / SELECTION
    if not path.exists() or not (Path(directory) / f"{SELECTED}.npy").exists():
        raise WorldModelsError(f"no real selection in {directory}: run `worldmodels select` "
                               "first")
    selection = read_json(path)
    if selection.get("controller_run_id") != controller_manifest.get("run_id"):
        raise WorldModelsError(f"{path} chose among an earlier run of the controller: re-run "
                               "`worldmodels select`")
    return selection


def load_controller(path: Path, spec: Controller) -> np.ndarray:
    """A saved controller, checked against the shape the world and variant call for; never
    unpickled, and a damaged file is a one-line error."""
    try:
        flat = np.load(path, allow_pickle=False)
        if not isinstance(flat, np.ndarray) or not np.issubdtype(flat.dtype, np.floating):
            raise ValueError(f"not an array of floats ({type(flat).__name__})")
    except (OSError, ValueError, EOFError) as error:  # what np.load raises on a damaged file
        reason = " ".join(str(error).split())[:100] or type(error).__name__
        raise WorldModelsError(f"the controller {path} is damaged ({reason}): re-run "
                               "`worldmodels train-controller --force`") from None
    if not np.all(np.isfinite(flat)):
        raise WorldModelsError(f"the controller {path} holds NaN or infinite parameters: "
                               "re-run `worldmodels train-controller --force`")
    if flat.shape != (spec.param_count,):
        raise WorldModelsError(
            f"the controller {path} has {flat.size} parameters, but V and M give inputs of "
            f"{spec.input_size} for the {spec.variant} variant ({spec.param_count} parameters): "
            "re-run `worldmodels train-controller`"
        )
    return flat
