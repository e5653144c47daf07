"""Scoring controllers: in the dream (batched inside M) or in the real env (batched across a
set of worker processes, each running V + M + C beside its envs). Used by CMA-ES (fitness) and
by evaluation."""

from __future__ import annotations

import numpy as np

from worldmodels.collect import episode_seeds
from worldmodels.dream import burn_in_starts, initial_latents, make_dream, run_dream

TRAIN_STAGE_KEY = 1
EVALUATE_STAGE_KEY = 2
CHECK_STAGE_KEY = 3  # real-env checks while C evolves in the dream
SHOW_STAGE_KEY = 4  # the real episode behind `worldmodels show`'s pictures of M
FIDELITY_STAGE_KEY = 5  # the real episodes M is measured against (`worldmodels fidelity`)


class DreamScorer:
    """Mean dream return of candidates over ``trials`` dreams each, all in one batch."""

    def __init__(self, world: dict, temperature: float, max_steps: int, seed: int,
                 controller=None, dropout: float = 0.0, action_noise: float = 0.0,
                 pay_as_track: bool = False, dropout_mask: str = "step"):
        self.world, self.temperature, self.max_steps = world, temperature, max_steps
        self.seed = seed
        tile_value = world["tile_value"] if pay_as_track else 0.0
        self.dream = make_dream(world["rnn"], controller, dropout, action_noise, tile_value,
                                mask_per_dream=dropout_mask == "dream")

    def run(self, params: np.ndarray, call_seed: int,
            temperature: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Returns and lengths of one dream per row of ``params`` (at ``temperature``, default
        the scorer's); the starts and noise depend only on the seeds, not the temperature."""
        rng = np.random.default_rng([self.seed, call_seed])
        temperature = self.temperature if temperature is None else temperature
        burn_in = self.world.get("burn_in", 0)
        if burn_in:
            z0, state, _ = burn_in_starts(self.world["rnn"], self.world["starts"], len(params),
                                          rng)
        else:
            z0, _ = initial_latents(self.world["mu0"], self.world["logvar0"], len(params), rng)
            state = None
        # The burn-in steps count against the episode's time limit, as in the real env.
        return run_dream(self.dream, params, z0, temperature, self.max_steps - burn_in,
                         seed=int(rng.integers(2**31)), state=state)

    def fitness(self, candidates: np.ndarray, generation: int, trials: int) -> np.ndarray:
        params = np.repeat(candidates, trials, axis=0)
        returns, _ = self.run(params, generation)
        return returns.reshape(len(candidates), trials).mean(axis=1)


class RealScorer:
    """Mean real-env return of candidates over ``trials`` tracks each; the tracks of a
    generation are shared by all candidates and differ between generations. Episodes run on
    ``backend`` (``worldmodels.workers``), each worker with its own V and M."""

    def __init__(self, world: dict, backend, seed: int, env_id: str, max_steps: int,
                 progress: bool = False, controller=None, noise: float = 0.0):
        from worldmodels.agent import AgentSetup

        self.backend, self.seed, self.progress, self.noise = backend, seed, progress, noise
        self.setup = AgentSetup.from_world(world, controller, env_id, max_steps, seed)

    def run(self, params: np.ndarray, seeds: list[int], desc: str = "real", done=None,
            on_episode=None, on_length=None) -> np.ndarray:
        from worldmodels.agent import run_real_episodes

        return run_real_episodes(self.backend, self.setup, params.astype(np.float32), seeds,
                                 progress=self.progress, desc=desc, done=done,
                                 on_episode=on_episode, noise=self.noise,
                                 on_length=on_length)

    def check(self, best: np.ndarray, mean: np.ndarray, episodes: int) -> tuple[float, float]:
        """Mean real return of the ``best`` and the ``mean`` controllers, each over the same
        ``episodes`` tracks (the same at every check, apart from those of collection, training
        and evaluation)."""
        tracks = episode_seeds(self.seed, episodes, CHECK_STAGE_KEY)
        params = np.stack([best] * episodes + [mean] * episodes)
        returns = self.run(params, tracks * 2, desc="real check")
        return float(returns[:episodes].mean()), float(returns[episodes:].mean())

    def fitness(self, candidates: np.ndarray, generation: int, trials: int) -> np.ndarray:
        tracks = episode_seeds(self.seed * 100_003 + generation, trials, TRAIN_STAGE_KEY)
        params = np.repeat(candidates, trials, axis=0)
        returns = self.run(params, tracks * len(candidates), desc=f"gen {generation + 1}")
        return returns.reshape(len(candidates), trials).mean(axis=1)
