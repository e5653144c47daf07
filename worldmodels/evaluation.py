"""Evaluation of a trained agent over many episodes, in the real env or in the dream."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from worldmodels.artifacts import Layout
from worldmodels.collect import episode_seeds
from worldmodels.config import EvaluateConfig
from worldmodels.errors import WorldModelsError
from worldmodels.models import load_world
from worldmodels.scoring import EVALUATE_STAGE_KEY, DreamScorer, RealScorer


def evaluate(layout: Layout, controller_manifest: dict, directory: Path, params_name: str,
             where: str, config: EvaluateConfig, seed: int, progress: bool = True) -> dict:
    """Scores of the controller over ``config.episodes`` episodes on tracks (or dreams) seeded
    from ``seed``, disjoint from collection and training seeds."""
    world = load_world(layout, need_vae=(where == "real"))
    if controller_manifest["inputs"]["rnn"] != world["rnn_manifest"]["run_id"]:
        raise WorldModelsError(
            f"the controller in {directory} was trained with another M than {layout.rnn}: "
            "re-run `worldmodels train-controller`"
        )
    flat = np.load(Path(directory) / f"{params_name}.npy")
    params = np.repeat(flat[None], config.episodes, axis=0).astype(np.float32)
    seeds = episode_seeds(seed, config.episodes, EVALUATE_STAGE_KEY)
    result = {"env": config.env_id, "where": where, "episodes": config.episodes,
              "controller": str(directory), "params": params_name, "seeds": seeds}
    if where == "dream":
        scorer = DreamScorer(world, config.temperature, config.max_steps, seed)
        scores, lengths = scorer.run(params, call_seed=EVALUATE_STAGE_KEY)
        # Dreams have no tracks: their starts and noise all derive from the run seed.
        result.update(temperature=config.temperature, lengths=lengths.tolist(), seeds=[seed])
    else:
        from worldmodels.env import EnvPool, default_workers

        workers = min(default_workers(config.workers), config.episodes)
        with EnvPool(config.env_id, config.max_steps, workers) as pool:
            scorer = RealScorer(world, pool, seed, progress=progress)
            scores = scorer.run(params, seeds, desc="evaluate")
    scores = np.asarray(scores, dtype=float)
    result.update(mean=float(scores.mean()), std=float(scores.std()), scores=scores.tolist())
    return result
