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


def default_workers(workers: int | None) -> int:
    """None means one worker per core."""
    if workers is None:
        return os.cpu_count() or 1
    if workers < 1:
        raise WorldModelsError(f"workers must be >= 1, got {workers}")
    return workers


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
    CMA-ES in the real env so that the agents' forward passes are batched across envs. A worker
    that dies is reported by ``step`` and can be replaced with ``restart``."""

    def __init__(self, env_id: str, max_steps: int, size: int):
        check_env_id(env_id)
        self.env_id, self.max_steps, self.size = env_id, max_steps, size
        self._context = mp.get_context("spawn")
        self._connections = [None] * size
        self._processes = [None] * size
        for index in range(size):
            self._start(index)

    def _start(self, index: int) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker, args=(child, self.env_id, self.max_steps), daemon=True
        )
        process.start()
        child.close()
        self._connections[index], self._processes[index] = parent, process

    def restart(self, index: int) -> None:
        """Replace the worker of env ``index`` (after a crash)."""
        process = self._processes[index]
        if process.is_alive():
            process.kill()
        process.join(timeout=5)
        self._connections[index].close()
        self._start(index)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def reset(self, index: int, seed: int) -> np.ndarray | None:
        """Start a new episode in env ``index`` on the track of ``seed``; returns its frame, or
        None if the worker died (replace it with ``restart``)."""
        try:
            self._connections[index].send(("reset", seed))
            return self._connections[index].recv()
        except (EOFError, OSError):
            return None

    def step(self, actions: dict[int, np.ndarray]) -> tuple[dict[int, tuple], set[int]]:
        """Step the envs named in ``actions`` in parallel; returns their (frame, reward,
        terminated, truncated), and the set of envs whose worker died."""
        crashed = set()
        for index, action in actions.items():
            try:
                self._connections[index].send(("step", np.asarray(action, dtype=np.float32)))
            except OSError:
                crashed.add(index)
        results = {}
        for index in actions:
            if index in crashed:
                continue
            try:
                results[index] = self._connections[index].recv()
            except (EOFError, OSError):
                crashed.add(index)
        return results, crashed

    def close(self) -> None:
        for connection in self._connections:
            try:
                connection.send(("close", None))
            except OSError:
                pass
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
