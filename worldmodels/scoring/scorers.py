"""Scoring controllers: in the dream (batched inside M) or in the real env (batched across a
set of worker processes, each running V + M + C beside its envs). Used by CMA-ES (fitness) and
by evaluation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from worldmodels.data.collect import episode_seeds
from worldmodels.model.dream import burn_in_starts, initial_latents, make_dream, run_dream

if TYPE_CHECKING:
    from worldmodels.config import DreamSpec
    from worldmodels.model.world import World

TRAIN_STAGE_KEY = 1
EVALUATE_STAGE_KEY = 2
CHECK_STAGE_KEY = 3  # real-env checks while C evolves in the dream
SHOW_STAGE_KEY = 4  # the real episode behind `worldmodels show`'s pictures of M
FIDELITY_STAGE_KEY = 5  # the real episodes M is measured against (`worldmodels fidelity`)
SELECT_STAGE_KEY = 6  # the validation tracks `worldmodels select` chooses a controller on
RESOLUTION_STAGE_KEY = 7  # the validation tracks of `worldmodels resolution`
RECHECK_CALL_SEED = 2 * 10**6  # + generation: the rollouts a generation's top is rescored on
# How an ensemble's rules other than "mean" describe and make a candidate's fitness from its
# mean in each member (``ControllerConfig.ensemble``).
ENSEMBLE_RULES = {"worst": ("worst member's", np.min), "median": ("members' median", np.median)}


class DreamScorer:
    """Mean dream return of candidates over ``trials`` dreams each, all in one batch, in the
    dream ``spec`` describes (``config.DreamSpec``: how the controller is or was dreamt) at
    ``temperature`` and for ``max_steps`` (default: the spec's). The world's burn-in is the
    spec's (``load_world(burn_in=spec.burn_in)``). With an ensemble of Ms (``World.rnns``),
    the dreams of a batch are dealt out among them in turn (row i dreams in M number i mod K),
    each M's share in one batch of its own."""

    def __init__(self, world: World, spec: DreamSpec, seed: int, controller=None,
                 temperature: float | None = None, max_steps: int | None = None):
        if world.burn_in != spec.burn_in:
            raise ValueError(f"a world loaded for a burn-in of {world.burn_in} steps cannot "
                             f"dream as a spec of {spec.burn_in}")
        self.world, self.spec, self.seed, self.controller = world, spec, seed, controller
        self.temperature = spec.temperature if temperature is None else temperature
        self.max_steps = spec.max_steps if max_steps is None else max_steps
        self.dreams = [make_dream(rnn, controller, spec, world.tile_value)
                       for rnn in world.rnns]

    def run(self, params: np.ndarray, call_seed: int, temperature: float | None = None,
            record: bool = False) -> tuple[np.ndarray, ...]:
        """Returns and lengths of one dream per row of ``params`` (at ``temperature``, default
        the scorer's); the starts and noise depend only on the seeds, not the temperature.
        With ``record``, also each dream's z and rewards at every step (see
        ``dream.make_dream``) and its start z; a recorded dream is M's own (an ensemble's
        first member), for pictures of M."""
        rng = np.random.default_rng([self.seed, call_seed])
        temperature = self.temperature if temperature is None else temperature
        if record:
            dream = make_dream(self.world.rnn, self.controller, self.spec,
                               self.world.tile_value, record=True)
            return self._dream_in(self.world.rnn, dream, params, rng, temperature)
        returns = np.zeros(len(params), np.float32)
        lengths = np.zeros(len(params), np.int32)
        for member, (rnn, dream) in enumerate(zip(self.world.rnns, self.dreams)):
            rows = np.arange(member, len(params), len(self.dreams))
            if len(rows):
                returns[rows], lengths[rows] = self._dream_in(rnn, dream, params[rows], rng,
                                                              temperature)[:2]
        return returns, lengths

    def _dream_in(self, rnn, dream, params: np.ndarray, rng: np.random.Generator,
                  temperature: float) -> tuple[np.ndarray, ...]:
        """One batch of dreams in ``rnn`` (compiled as ``dream``), its starts drawn from
        ``rng``; returns the dream's outputs and the start z."""
        burn_in = self.world.burn_in
        if burn_in:
            z0, state, _ = burn_in_starts(rnn, self.world.starts, len(params), rng)
        else:
            z0, _ = initial_latents(self.world.mu0, self.world.logvar0, len(params), rng)
            state = None
        # The burn-in steps count against the episode's time limit, as in the real env.
        outputs = run_dream(dream, params, z0, temperature, self.max_steps - burn_in,
                            seed=int(rng.integers(2**31)), state=state)
        return (*outputs, z0)

    def fitness(self, candidates: np.ndarray, generation: int, trials: int) -> np.ndarray:
        """Each candidate's mean return over ``trials`` dreams; with an ensemble and the
        spec's ``ensemble`` "worst" or "median", the least or the median of its mean in each
        member (with fewer trials than members, each member cannot score every candidate:
        the mean)."""
        params = np.repeat(candidates, trials, axis=0)
        returns, _ = self.run(params, generation)
        returns = returns.reshape(len(candidates), trials)
        members = len(self.dreams)
        if members == 1 or self.spec.ensemble == "mean" or trials < members:
            return returns.mean(axis=1)
        member_of = (np.arange(len(params)) % members).reshape(len(candidates), trials)
        by_member = [np.nanmean(np.where(member_of == k, returns, np.nan), axis=1)
                     for k in range(members)]
        return ENSEMBLE_RULES[self.spec.ensemble][1](by_member, axis=0)


class RealScorer:
    """Mean real-env return of candidates over ``trials`` tracks each; the tracks of a
    generation are shared by all candidates and differ between generations. Episodes run on
    ``backend`` (``worldmodels.core.workers``), each worker with its own V and M."""

    def __init__(self, world: World, backend, seed: int, max_steps: int,
                 progress: bool = False, controller=None, noise: float = 0.0):
        from worldmodels.model.agent import AgentSetup

        self.backend, self.seed, self.progress, self.noise = backend, seed, progress, noise
        self.setup = AgentSetup.from_world(world, controller, max_steps, seed)

    def run(self, params: np.ndarray, seeds: list[int], desc: str = "real", done=None,
            on_episode=None, on_length=None) -> np.ndarray:
        from worldmodels.model.agent import run_real_episodes

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


def describe_training(spec, config) -> list[str]:
    """What `train-controller` is about to do, in a line or two."""
    where = config.where
    lines = [f"C: {spec.describe()}; CMA-ES population {config.population} x {config.trials} "
             f"trials, {config.generations} generations, scored in the {where}"
             + (f" at temperature {config.temperature}" if where == "dream" else "")
             + (f", action noise {config.action_noise}" if config.action_noise else "")
             + (f", dream dropout {config.dropout}" if where == "dream" and config.dropout
                else "")
             + (", one dropout mask per dream" if where == "dream" and config.dropout
                and config.dropout_mask == "dream" else "")
             + (", paid as a track pays" if where == "dream" and config.pay_as_track else "")
             + (f", fitness its {ENSEMBLE_RULES[config.ensemble][0]} (with an ensemble of Ms)"
                if where == "dream" and config.ensemble != "mean" else "")
             + (f", steering penalty {config.steer_penalty:g}" if where == "dream"
                and config.steer_penalty else "")
             + (f"; each generation's top rescored on {config.recheck} fresh rollouts before "
                "it may be kept" if config.recheck else "")]
    if where == "dream" and config.real_every > 0:
        lines.append(f"real checks: best so far and mean, {config.real_episodes} episodes each, "
                     f"every {config.real_every} generations")
    return lines


def evolve_controller(world: World, config, seed: int, directory, spec,
                      ray_address: str | None = None, progress: bool = True) -> list[dict]:
    """CMA-ES over ``spec``'s parameters for ``config`` (a ControllerConfig), scored in the
    dream or the real env, with the real checks it asks for; continues from the CMA-ES state in
    ``directory``. Returns the history, one row per generation."""
    from contextlib import nullcontext

    from worldmodels.config import DreamSpec
    from worldmodels.core.workers import make_backend
    from worldmodels.model.evolution import evolve

    checking = config.where == "dream" and config.real_every > 0
    backend = nullcontext()
    if config.where == "real" or checking:
        backend = make_backend(config.workers, ray_address)
    with backend:
        real = None if isinstance(backend, nullcontext) else RealScorer(
            world, backend, seed, config.max_steps, controller=spec,
            noise=config.action_noise)
        scorer = real if config.where == "real" else DreamScorer(
            world, DreamSpec.from_config(config), seed, spec)
        check_fn = (lambda best, mean: real.check(best, mean, config.real_episodes)) \
            if checking else None
        recheck_fn = (lambda top, g: scorer.fitness(top[None], RECHECK_CALL_SEED + g,
                                                    config.recheck)[0]) if config.recheck else None
        return evolve(lambda c, g: scorer.fitness(c, g, config.trials), spec.param_count, config,
                      seed, directory, progress, check_fn=check_fn, recheck_fn=recheck_fn)
