"""The CarRacing env: creation, frame preprocessing, and a pool of env worker processes.

Frames are cropped of the 12-pixel indicator bar at the bottom (96x96 -> 84x96) and resized to
64x64 with an antialiasing filter, stored as uint8.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from worldmodels.config import FRAME_SIZE
from worldmodels.errors import WorldModelsError

INDICATOR_ROWS = 12


def check_env_id(env_id: str) -> None:
    """Raise a one-line error if gymnasium does not know ``env_id``."""
    import gymnasium as gym

    if env_id not in gym.envs.registry:
        raise WorldModelsError(f"unknown env {env_id!r}: this suite runs CarRacing-v3")


def make_env(env_id: str, max_steps: int, render_mode: str | None = None):
    """A gymnasium env that renders state pixels headless, with a time limit of ``max_steps``
    (``render_mode`` "rgb_array": ``env.render()`` also gives the env's large view)."""
    import gymnasium as gym

    check_env_id(env_id)
    return gym.make(env_id, max_episode_steps=max_steps, render_mode=render_mode)


def preprocess_frame(observation: np.ndarray) -> np.ndarray:
    """96x96x3 uint8 observation -> 64x64x3 uint8 frame without the indicator bar."""
    assert observation.shape == (96, 96, 3), f"expected a 96x96x3 frame, got {observation.shape}"
    cropped = observation[: 96 - INDICATOR_ROWS]
    image = Image.fromarray(cropped).resize((FRAME_SIZE, FRAME_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def default_workers(workers: int | None) -> int:
    """None means one worker per core."""
    if workers is None:
        return os.cpu_count() or 1
    if workers < 1:
        raise WorldModelsError(f"workers must be >= 1, got {workers}")
    return workers


class EnvSetup:
    """Worker-side state of env-only tasks: envs, built once per worker."""

    def __init__(self, env_id: str, max_steps: int, envs: int = 1):
        self.env_id, self.max_steps, self.envs = env_id, max_steps, envs

    @property
    def key(self) -> str:
        return f"envs:{self.env_id}:{self.max_steps}:{self.envs}"

    def build(self) -> list:
        return [make_env(self.env_id, self.max_steps) for _ in range(self.envs)]


def replay_episodes(envs: list, episodes: list) -> int:
    """A worker task: step episodes [(seed, actions)] with recorded actions in lockstep, as
    the agent's tasks do, with no model; returns the number of steps. The baseline of
    `worldmodels bench --targets real`."""
    assert len(episodes) <= len(envs), f"{len(episodes)} episodes for {len(envs)} envs"
    for env, (seed, _) in zip(envs, episodes):
        preprocess_frame(env.reset(seed=int(seed))[0])
    steps = 0
    for t in range(max(len(actions) for _, actions in episodes)):
        for env, (_, actions) in zip(envs, episodes):
            if t < len(actions):
                preprocess_frame(env.step(actions[t])[0])
                steps += 1
    return steps
