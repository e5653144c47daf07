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


def _worker(connection, env_id: str, max_steps: int, envs: int) -> None:
    """Serve ``envs`` envs: each message is a list of (env, op, argument), op "reset" (argument
    a seed) or "step" (an action); the reply lists the results in the same order."""
    pool = [make_env(env_id, max_steps) for _ in range(envs)]
    try:
        while True:
            message = connection.recv()
            if message is None:
                break
            replies = []
            for index, op, argument in message:
                if op == "reset":
                    observation, _ = pool[index].reset(seed=int(argument))
                    replies.append(preprocess_frame(observation))
                else:
                    observation, reward, terminated, truncated, _ = pool[index].step(argument)
                    replies.append((preprocess_frame(observation), float(reward),
                                    bool(terminated), bool(truncated)))
            connection.send(replies)
    finally:
        for env in pool:
            env.close()
        connection.close()


class EnvPool:
    """``workers`` processes each holding ``envs_per_worker`` envs; ``size`` envs in all, named
    by slot (slot = worker * envs_per_worker + env). Used by evaluation and by CMA-ES in the
    real env, so that the agents' forward passes are batched across envs.

    Messages are asynchronous: ``send`` gives each worker a list of resets and steps for some of
    its envs and ``receive`` collects the replies, in the order they were sent. With two groups
    of slots (``groups``), one group's envs step while the agents of the other group think, so
    the env processes never wait for the model. A worker that dies is reported by ``send`` or
    ``receive`` and can be replaced with ``restart``."""

    def __init__(self, env_id: str, max_steps: int, workers: int, envs_per_worker: int = 4):
        check_env_id(env_id)
        self.env_id, self.max_steps = env_id, max_steps
        self.workers, self.envs_per_worker = workers, envs_per_worker
        self.size = workers * envs_per_worker
        self._context = mp.get_context("spawn")
        self._connections = [None] * workers
        self._processes = [None] * workers
        self._pending: dict[int, list] = {}  # worker -> env indices of each unanswered message
        for worker in range(workers):
            self._start(worker)

    def _start(self, worker: int) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker, args=(child, self.env_id, self.max_steps, self.envs_per_worker),
            daemon=True,
        )
        process.start()
        child.close()
        self._connections[worker], self._processes[worker] = parent, process
        self._pending[worker] = []

    def worker_of(self, slot: int) -> int:
        return slot // self.envs_per_worker

    def slots_of(self, worker: int) -> list[int]:
        return list(range(worker * self.envs_per_worker, (worker + 1) * self.envs_per_worker))

    def spread(self) -> list[int]:
        """Slots in the order that spreads work over the workers first (the first env of every
        worker, then the second...)."""
        return [w * self.envs_per_worker + e for e in range(self.envs_per_worker)
                for w in range(self.workers)]

    def groups(self) -> list[list[int]]:
        """Two groups of slots such that every worker (or, with one env per worker, every other
        worker) has envs in both: the model thinks for one group while the other steps."""
        if self.envs_per_worker > 1:
            key = [slot % self.envs_per_worker % 2 for slot in range(self.size)]
        else:
            key = [slot % 2 for slot in range(self.size)]
        groups = [[s for s in range(self.size) if key[s] == g] for g in (0, 1)]
        return [g for g in groups if g]

    def restart(self, worker: int) -> None:
        """Replace worker ``worker`` (after a crash); its envs start empty."""
        process = self._processes[worker]
        if process.is_alive():
            process.kill()
        process.join(timeout=5)
        self._connections[worker].close()
        self._start(worker)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def send(self, ops: dict[int, tuple[str, object]]) -> tuple[set[int], set[int]]:
        """Send ``{slot: ("reset", seed) | ("step", action)}``, one message per worker; returns
        (workers sent to, workers found dead)."""
        messages: dict[int, list] = {}
        for slot in sorted(ops):
            op, argument = ops[slot]
            if op == "step":
                argument = np.asarray(argument, dtype=np.float32)
            messages.setdefault(self.worker_of(slot), []).append(
                (slot % self.envs_per_worker, op, argument))
        sent, dead = set(), set()
        for worker, message in messages.items():
            try:
                self._connections[worker].send(message)
            except OSError:
                dead.add(worker)
                continue
            sent.add(worker)
            self._pending[worker].append([local for local, _, _ in message])
        return sent, dead

    def receive(self, workers) -> tuple[dict[int, object], set[int]]:
        """The replies of ``workers`` to their oldest message: {slot: frame after a reset, or
        (frame, reward, terminated, truncated) after a step}, and the workers found dead."""
        results, dead = {}, set()
        for worker in workers:
            locals_ = self._pending[worker].pop(0)
            try:
                replies = self._connections[worker].recv()
            except (EOFError, OSError):
                dead.add(worker)
                continue
            base = worker * self.envs_per_worker
            for local, reply in zip(locals_, replies):
                results[base + local] = reply
        return results, dead

    def reset(self, slot: int, seed: int) -> np.ndarray | None:
        """Synchronous: start a new episode in ``slot`` on the track of ``seed``; returns its
        frame, or None if the worker died (replace it with ``restart``)."""
        sent, _ = self.send({slot: ("reset", seed)})
        results, _ = self.receive(sent)
        return results.get(slot)

    def step(self, actions: dict[int, np.ndarray]) -> tuple[dict[int, tuple], set[int]]:
        """Synchronous: step the envs named in ``actions``; returns their (frame, reward,
        terminated, truncated), and the set of slots whose worker died."""
        sent, dead = self.send({slot: ("step", a) for slot, a in actions.items()})
        results, lost = self.receive(sent)
        dead |= lost
        return results, {slot for slot in actions if self.worker_of(slot) in dead}

    def close(self) -> None:
        for connection in self._connections:
            try:
                connection.send(None)
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
