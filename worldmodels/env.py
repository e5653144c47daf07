"""The CarRacing env: creation, frame preprocessing, and a pool of env worker processes.

Frames are cropped of the 12-pixel indicator bar at the bottom (96x96 -> 84x96) and resized to
64x64 with an antialiasing filter, stored as uint8.
"""

from __future__ import annotations

import multiprocessing as mp
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


def make_env(env_id: str, max_steps: int):
    """A gymnasium env that renders state pixels headless, with a time limit of ``max_steps``."""
    import gymnasium as gym

    check_env_id(env_id)
    return gym.make(env_id, max_episode_steps=max_steps)


def preprocess_frame(observation: np.ndarray) -> np.ndarray:
    """96x96x3 uint8 observation -> 64x64x3 uint8 frame without the indicator bar."""
    assert observation.shape == (96, 96, 3), f"expected a 96x96x3 frame, got {observation.shape}"
    cropped = observation[: 96 - INDICATOR_ROWS]
    image = Image.fromarray(cropped).resize((FRAME_SIZE, FRAME_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def default_workers(workers: int) -> int:
    """0 means one worker per core."""
    if workers < 0:
        raise WorldModelsError(f"workers must be >= 0, got {workers}")
    return workers or os.cpu_count() or 1


def _worker(connection, env_id: str, max_steps: int) -> None:
    env = make_env(env_id, max_steps)
    try:
        while True:
            command, argument = connection.recv()
            if command == "reset":
                observation, _ = env.reset(seed=int(argument))
                connection.send(preprocess_frame(observation))
            elif command == "step":
                observation, reward, terminated, truncated, _ = env.step(argument)
                frame = preprocess_frame(observation)
                connection.send((frame, float(reward), bool(terminated), bool(truncated)))
            else:
                break
    finally:
        env.close()
        connection.close()


class EnvPool:
    """``size`` envs, each in its own process, stepped together; used by evaluation and by
    CMA-ES in the real env so that the agents' forward passes are batched across envs."""

    def __init__(self, env_id: str, max_steps: int, size: int):
        check_env_id(env_id)
        context = mp.get_context("spawn")
        self.size = size
        self._connections, self._processes = [], []
        for _ in range(size):
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker, args=(child, env_id, max_steps), daemon=True
            )
            process.start()
            child.close()
            self._connections.append(parent)
            self._processes.append(process)

    def reset(self, index: int, seed: int) -> np.ndarray:
        """Start a new episode in env ``index`` on the track of ``seed``; returns its frame."""
        self._connections[index].send(("reset", seed))
        return self._connections[index].recv()

    def step(self, actions: dict[int, np.ndarray]) -> dict[int, tuple]:
        """Step the envs named in ``actions`` in parallel; returns their (frame, reward,
        terminated, truncated)."""
        for index, action in actions.items():
            self._connections[index].send(("step", np.asarray(action, dtype=np.float32)))
        return {index: self._connections[index].recv() for index in actions}

    def close(self) -> None:
        for connection in self._connections:
            try:
                connection.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
