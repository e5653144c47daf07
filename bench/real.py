"""The real-env target: V + M + C on worker processes against the same processes replaying the
recorded actions on the same tracks with no model."""

from __future__ import annotations

import time

import numpy as np

from .rows import Row, ratio_row


def untrained_world(z_size: int, hidden_size: int, mixtures: int, env_id: str):
    """A ``World`` of random-weight V and M of these sizes in ``env_id``: what the agent runs
    costs the same as with trained weights. It has no dream starts (nothing was collected)."""
    from worldmodels.envs import get_env
    from worldmodels.model.rnn import MDNRNN
    from worldmodels.model.vae import ConvVAE
    from worldmodels.model.world import World

    env = get_env(env_id)
    no_starts = np.zeros((0, z_size), np.float32)
    return World(env=env, vae_manifest={}, rnn_manifest={}, z_size=z_size,
                 hidden_size=hidden_size,
                 rnn=MDNRNN(z_size, hidden_size, mixtures, action_size=env.action_size),
                 vae=ConvVAE(z_size), mu0=no_starts, logvar0=no_starts,
                 tile_value=float("nan"))


def bench_real(workers: int, episodes: int, max_steps: int, log) -> list[Row]:
    """The agent (untrained V, M and C of the paper's sizes, some gas so the car drives) over
    ``episodes`` real episodes on ``workers`` local worker processes, against the same worker
    processes replaying the recorded actions on the same tracks with no model. Both are timed
    after their workers have started and built what they hold."""
    from worldmodels.core.workers import LocalBackend
    from worldmodels.envs.shared import EnvSetup, replay_episodes
    from worldmodels.model.agent import (
        EPISODES_PER_TASK,
        AgentSetup,
        episode_tasks,
        run_real_episodes,
        warm_up,
    )
    from worldmodels.model.controller import Controller

    env_id = "CarRacing-v3"
    spec = Controller("zh", 32, 256)
    setup = AgentSetup.from_world(untrained_world(32, 256, 5, env_id), spec, max_steps,
                                  noise_seed=0)
    rng = np.random.default_rng(0)
    params = rng.normal(0, 0.1, (episodes, spec.param_count)).astype(np.float32)
    params[:, -2] += 1.0  # some gas, so that the car drives
    seeds = [10_000 + i for i in range(episodes)]
    actions: dict = {}
    with LocalBackend(workers) as backend:
        list(backend.run(warm_up, dict.fromkeys(range(workers)), shared=setup))
        started = time.perf_counter()
        run_real_episodes(backend, setup, params, seeds, progress=False, record="actions",
                          on_recorded=actions.__setitem__)
        wall = time.perf_counter() - started
    steps = sum(len(a) for a in actions.values())
    tasks = {k: [(seeds[e], actions[e]) for e in indices]
             for k, indices in enumerate(episode_tasks(episodes))}
    envs = EnvSetup(env_id, max_steps, EPISODES_PER_TASK)
    with LocalBackend(workers) as backend:
        list(backend.run(replay_episodes, {w: [(0, [])] for w in range(workers)}, shared=envs))
        started = time.perf_counter()
        raw_steps = sum(n for _, n in backend.run(replay_episodes, tasks, shared=envs))
        raw_wall = time.perf_counter() - started
    assert raw_steps == steps, f"replayed {raw_steps} steps of {steps}"
    log(f"real: agent {steps / wall:.0f} steps/s, replay without model "
        f"{raw_steps / raw_wall:.0f} steps/s")
    return [ratio_row("real: V+M+C wall time vs raw env stepping", wall, raw_wall, "s",
                      goal_max=1.2,
                      detail=f"{workers} processes, {episodes} episodes x {max_steps} steps, "
                             f"{EPISODES_PER_TASK} per task; the raw run replays the same "
                             "actions on the same tracks")]
