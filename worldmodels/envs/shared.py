"""Env machinery shared by every env: worker counts, envs built once per worker, and the raw
replay that `bench` measures against. What differs between envs lives in ``worldmodels.envs``."""

from __future__ import annotations

import os

from worldmodels.envs import check_env_id, get_env, make_env
from worldmodels.envs.carracing import preprocess_frame
from worldmodels.errors import WorldModelsError

__all__ = ["EnvSetup", "check_env_id", "default_workers", "make_env", "preprocess_frame",
           "replay_episodes"]


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


def replay_episodes(envs: list, episodes: list, env_id: str = "CarRacing-v3") -> int:
    """A worker task: step episodes [(seed, actions)] with recorded actions in lockstep, as
    the agent's tasks do, with no model; returns the number of steps. The baseline of
    `worldmodels bench --targets real`."""
    assert len(episodes) <= len(envs), f"{len(episodes)} episodes for {len(envs)} envs"
    preprocess = get_env(env_id).preprocess
    for env, (seed, _) in zip(envs, episodes):
        preprocess(env.reset(seed=int(seed))[0])
    steps = 0
    for t in range(max(len(actions) for _, actions in episodes)):
        for env, (_, actions) in zip(envs, episodes):
            if t < len(actions):
                preprocess(env.step(actions[t])[0])
                steps += 1
    return steps
