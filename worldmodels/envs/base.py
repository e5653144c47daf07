"""What every env of the suite provides (``EnvSpec``): how to make it, how its frames become
V's 64x64 frames, its action box and C's squash into it, its exploration policies, and how the
dream scores and ends an episode in it. One module per env (``carracing``, ``takecover``)
defines one; ``worldmodels.envs.get_env`` finds it by its id."""

from __future__ import annotations

import numpy as np

from worldmodels.errors import WorldModelsError


class Policy:
    """An exploration policy: ``act(observation)`` on the env's raw observation."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def act(self, observation: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class EnvSpec:
    """An env as the suite sees it. Subclasses set the class attributes and the methods."""

    id: str
    """The id recorded in the rollouts' manifest and in every episode file."""
    action_size: int
    """Size of the action vector C outputs, M reads and episode files store."""
    action_labels: tuple[str, ...]
    """A name for each action component (figures, videos)."""
    low: np.ndarray
    high: np.ndarray
    """The action box (action noise is clipped to it)."""
    policies: dict[str, type]
    """Exploration policies by name."""
    episode_cap: int
    """The longest episode the env allows (the default ``max_steps``)."""
    step_reward: float | None = None
    """The dream pays this per step survived; None: the dream pays M's predicted reward."""
    done_threshold: float | None = None
    """The dream ends a dream when M's done probability is above this; None: the dream draws
    done from M's Bernoulli at every step."""
    solved: float = float("inf")
    """The mean real return that counts as solving the env."""
    max_return: float = float("inf")
    """The most one episode can return (`fidelity` counts dreams that pay more)."""
    gzip_level: int = 4
    """The gzip level of this env's episode files. Collection writes every frame once; where
    the env steps fast (TakeCover: ~0.2 ms a step), the writing is a large part of its
    time, and level 1 writes about twice as fast for a few per cent more bytes (CarRacing:
    ~6 ms a step, 23 % more bytes at level 1 for no time it would notice; docs/performance.md).
    Any level reads back the same arrays."""
    fixed_actions: dict[str, tuple[float, ...]] = {}
    """Constant behaviours by name, each as C's raw output before the squash: `fidelity`
    scores them in the dream and the real env, to see whether the dream knows what a trivial
    behaviour earns (a dream that pays "always right" 749 where the game pays 186 is one C
    will exploit: row T10 of results/EXPERIMENTS.md)."""

    def make(self, max_steps: int, render_mode: str | None = None):
        """A gymnasium-style env with a time limit of ``max_steps``."""
        raise NotImplementedError

    def preprocess(self, observation) -> np.ndarray:
        """The env's observation -> V's 64x64x3 uint8 frame."""
        raise NotImplementedError

    def squash_numpy(self, raw: np.ndarray) -> np.ndarray:
        """C's raw outputs (..., action_size) -> actions in the box."""
        raise NotImplementedError

    def squash_tf(self, raw):
        """TensorFlow twin of ``squash_numpy``."""
        raise NotImplementedError

    def make_policy(self, name: str, rng: np.random.Generator) -> Policy:
        """The exploration policy ``name``, seeded by ``rng``."""
        if name not in self.policies:
            raise WorldModelsError(f"unknown policy {name!r} for {self.id}; choose one of "
                                   f"{', '.join(self.policies)}")
        return self.policies[name](rng)

    def view(self, env) -> np.ndarray:
        """The large RGB view `enjoy` films (the env made with render_mode "rgb_array")."""
        return env.render()
