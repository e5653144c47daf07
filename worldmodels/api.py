"""A trained agent from Python: ``worldmodels.load_agent("mine")`` returns an ``Agent`` that acts
on the env's raw frames with the same compiled V + M + C step as the real evaluation
(``agent.make_agent_step``), runs whole episodes, and dreams in the dream it was trained in."""

from __future__ import annotations

import numpy as np

from worldmodels.config import DreamSpec
from worldmodels.core.artifacts import Layout, require_manifest
from worldmodels.model.agent import make_agent_step
from worldmodels.model.world import World
from worldmodels.scoring.evaluation import load_trained


class Agent:
    """V + M + C of a trained experiment. ``reset(seed)`` before each episode, then
    ``act(observation)`` at every step; with the same ``seed`` (the episode's track seed) and
    the agent's ``noise_seed`` (the run seed of `worldmodels evaluate --seed`), V's sampling
    noise and the action noise are the draws the real evaluation makes for that episode."""

    def __init__(self, world: World, controller, params: np.ndarray, dreamt: DreamSpec,
                 noise_seed: int = 0, noise: float = 0.0):
        self.world, self.controller, self.env_id = world, controller, world.env_id
        self.dreamt = dreamt  # how C was dreamt: dream() dreams so
        self.env = controller.env
        self.params = np.asarray(params, np.float32)[None]
        self.noise_seed, self.noise = noise_seed, noise
        self._step = make_agent_step(world.vae, world.rnn, controller)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """A blank memory (h, c) and the noise streams of the episode on track ``seed``."""
        H = self.world.hidden_size
        self.h, self.c = np.zeros((1, H), np.float32), np.zeros((1, H), np.float32)
        self._eps = np.random.default_rng(None if seed is None else [self.noise_seed, seed])
        self._shake = np.random.default_rng(
            None if seed is None else [self.noise_seed, seed, 1])

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The action for the env's raw frame (CarRacing: steer, gas, brake for a (96, 96, 3)
        frame; TakeCover: the move for a (120, 160, 3) screen), and M's memory advanced by
        it."""
        frame = self.env.preprocess(observation)[None]
        eps = self._eps.standard_normal(self.world.z_size).astype(np.float32)[None]
        action, self.h, self.c = (x.numpy() for x in self._step(frame, self.h, self.c,
                                                                 self.params, eps))
        action = action[0]
        if self.noise > 0:
            action = np.clip(action + self.noise * self._shake.standard_normal(action.shape),
                             self.env.low, self.env.high).astype(np.float32)
        return action

    def episode(self, seed: int, max_steps: int = 1000) -> dict:
        """One real episode on the track of ``seed``: its return, steps and actions."""
        env = self.env.make(max_steps)
        observation, _ = env.reset(seed=int(seed))
        self.reset(seed)
        total, actions = 0.0, []
        while True:
            actions.append(self.act(observation))
            observation, reward, terminated, truncated, _ = env.step(actions[-1])
            total += reward
            if terminated or truncated:
                env.close()
                return {"return": total, "steps": len(actions), "actions": np.stack(actions)}

    def dream(self, count: int = 16, temperature: float | None = None, max_steps: int = 1000,
              seed: int = 0) -> dict:
        """``count`` dreams inside M (an ensemble's first member), run as C was trained
        (burn-in, dropout, action noise, pay-as-track), at ``temperature`` (default: the one
        C was trained at): returns (count,), lengths (count,) and z (count, T+1, Z) to
        decode with ``agent.world.vae.decode``."""
        from worldmodels.scoring.scorers import EVALUATE_STAGE_KEY, DreamScorer

        scorer = DreamScorer(self.world, self.dreamt, seed, self.controller, temperature,
                             max_steps)
        params = np.repeat(self.params, count, axis=0)
        returns, lengths, z, _, z0 = scorer.run(params, EVALUATE_STAGE_KEY, record=True)
        return {"returns": returns, "lengths": lengths,
                "z": np.concatenate([z0[:, None], z], axis=1)}


def load_agent(name: str, results_dir="results", data_dir="data", round: int | None = None,
               params: str = "best", variant: str = "zh", trained_in: str = "dream",
               noise_seed: int = 0, noise: float = 0.0) -> Agent:
    """The trained agent of experiment ``name``: V, M and the controller ``params`` ("best",
    "mean", or "selected": the one `worldmodels select` chose) trained in the ``trained_in``
    env, or those `iterate` kept after ``round``.
    ``noise`` adds Gaussian noise of that std to every action, as `evaluate --noise`.
    ``name`` may also be the path of a bundle written by `worldmodels export`."""
    from worldmodels.core import bundle

    if bundle.is_bundle(name):  # a file of `worldmodels export`: checked, then unpacked
        with bundle.opened(name) as (root, index):  # (removed once V, M and C are loaded)
            layout = Layout(root / "data", root / "results", bundle.NAME)
            return _load(layout.at_round(round or 0), params, index["variant"],
                         index["trained_in"], noise_seed, noise)
    return _load(Layout(data_dir, results_dir, name).at_round(round or 0), params, variant,
                 trained_in, noise_seed, noise)


def _load(layout: Layout, params: str, variant: str, trained_in: str, noise_seed: int,
          noise: float) -> Agent:
    directory = layout.controller(trained_in, variant)
    manifest = require_manifest(directory, f"controller trained in the {trained_in}",
                                f"train-controller --where {trained_in} --variant {variant}")
    world, controller, flat, dreamt = load_trained(layout, manifest, directory, params, variant,
                                                   need_vae=True, dreams=True)
    return Agent(world, controller, flat, dreamt, noise_seed, noise)
