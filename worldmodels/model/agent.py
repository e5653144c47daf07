"""The whole agent (V + M + C) in the real env. Each worker (a local process or a Ray worker,
``worldmodels.core.workers``) holds its own copy of V and M and runs a task of a few episodes in
lockstep, the agents' forward passes batched across them: no frame crosses a process
boundary, and the env processes never wait on a busy model process.

Reproducibility: an episode's return depends only on its task (its track, its controller and
its place in the task), never on which worker ran it or how many there are: floating-point
results of a batched forward pass depend on the batch's shape, so tasks always hold the same
episodes (``EPISODES_PER_TASK`` consecutive ones) and the batch shape at each step follows
from the task alone."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from worldmodels.core.workers import WorkerCrashes

if TYPE_CHECKING:
    from worldmodels.model.world import World
from worldmodels.envs import get_env
from worldmodels.errors import WorldModelsError
from worldmodels.model.controller import Controller
from worldmodels.model.rnn import MDNRNN
from worldmodels.model.vae import ConvVAE, to_unit

# Episodes per worker task, run in lockstep. Part of what fixes an episode's floating-point
# results (see the module docstring), so it is a constant, not a setting.
EPISODES_PER_TASK = 4


def make_agent_step(vae: ConvVAE, rnn: MDNRNN, controller: Controller | None = None):
    """Compiled (frames, h, c, params, eps) -> (actions, h', c'): encode, act on z (and h),
    then advance M with [z, a]. ``controller`` defaults to the linear one on [z, h]."""
    if controller is None:
        controller = Controller("zh", rnn.z_size, rnn.hidden_size)

    # XLA: one compiled program per batch size; on one CPU thread it takes 2.2 ms instead of
    # 3.3 ms for a batch of 2 and 3.1 instead of 3.9 for 4.
    @tf.function(jit_compile=True)
    def step(frames, h, c, params, eps):
        mu, logvar = vae.encode(to_unit(frames))
        z = mu + tf.exp(0.5 * logvar) * eps
        actions = controller.act_batch(params, z, h, c)
        _, (h2, c2) = rnn.step(tf.concat([z, actions], -1), [h, c])
        return actions, h2, c2

    return step


@dataclass(frozen=True, eq=False)
class AgentSetup:
    """What a worker needs to run the agent: the env, V's and M's weights, the controller's
    shape and the seed of the sampling noise. Sent to each worker once per run and built
    there (``build``) into envs and a compiled agent step."""

    env_id: str
    max_steps: int
    z_size: int
    hidden_size: int
    mixtures: int
    variant: str
    noise_seed: int
    vae_weights: tuple
    rnn_weights: tuple

    @classmethod
    def from_world(cls, world: World, controller: Controller | None, max_steps: int,
                   noise_seed: int) -> AgentSetup:
        """The setup of ``controller`` (default: the linear one on [z, h]) in the world's env."""
        rnn = world.rnn
        return cls(world.env_id, max_steps, world.z_size, world.hidden_size,
                   rnn.mixtures,
                   controller.variant if controller is not None else "zh", noise_seed,
                   tuple(world.vae.get_weights()), tuple(rnn.get_weights()))

    @cached_property
    def key(self) -> str:
        """Identifies the setup, so a worker builds it once and rebuilds it when it changes."""
        digest = hashlib.sha1(repr((self.env_id, self.max_steps, self.z_size, self.hidden_size,
                                    self.mixtures, self.variant, self.noise_seed)).encode())
        for array in self.vae_weights + self.rnn_weights:
            digest.update(np.ascontiguousarray(array).data)
        return digest.hexdigest()

    def build(self) -> AgentWorker:
        return AgentWorker(self)


class AgentWorker:
    """A worker's envs and compiled agent step (TensorFlow on one thread: the worker's core
    also steps the envs)."""

    def __init__(self, setup: AgentSetup):
        limit_threads(1)
        self.env = get_env(setup.env_id)
        vae = ConvVAE(setup.z_size)
        rnn = MDNRNN(setup.z_size, setup.hidden_size, setup.mixtures,
                     action_size=self.env.action_size)
        vae.set_weights(list(setup.vae_weights))
        rnn.set_weights(list(setup.rnn_weights))
        self.setup = setup
        self.controller = Controller(setup.variant, setup.z_size, setup.hidden_size, setup.env_id)
        self.step = make_agent_step(vae, rnn, self.controller)
        self.envs = [self.env.make(setup.max_steps) for _ in range(EPISODES_PER_TASK)]


def limit_threads(threads: int) -> None:
    """TensorFlow's thread pools of this process, if it has not started yet."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # already started (a worker that built an earlier setup)


def episode_tasks(count: int) -> list[list[int]]:
    """The episodes (indices) of each task of a run of ``count`` episodes: consecutive groups
    of ``EPISODES_PER_TASK``, always the same for the same count (see the module docstring)."""
    return [list(range(start, min(start + EPISODES_PER_TASK, count)))
            for start in range(0, count, EPISODES_PER_TASK)]


def batch_rows(alive: int) -> int:
    """The batch shape for ``alive`` episodes: padded to a power of two, so a worker compiles
    at most three programs (1, 2 and 4 rows)."""
    rows = 1
    while rows < alive:
        rows *= 2
    return rows


def warm_up(worker: AgentWorker, _) -> None:
    """A worker task that compiles the agent step for every batch shape a task can use."""
    setup = worker.setup
    for B in sorted({batch_rows(n) for n in range(1, EPISODES_PER_TASK + 1)}):
        state = np.zeros((B, setup.hidden_size), np.float32)
        worker.step(np.zeros((B, 64, 64, 3), np.uint8), state, state,
                    np.zeros((B, worker.controller.param_count), np.float32),
                    np.zeros((B, setup.z_size), np.float32))


def run_agent_episodes(worker: AgentWorker, episodes: list) -> list:
    """A worker task: episodes [(seed, params, record, noise)] in lockstep; returns
    [(return, steps, recorded)] in the same order. ``record`` is False (``recorded`` is None),
    "actions" (the actions taken) or "episode" (the rollout's frames, actions, rewards and
    terminations, as collection stores them). ``noise`` > 0 adds Gaussian noise of that
    standard deviation to every action (clipped to the action box), seeded by the episode:
    exploration around a trained controller."""
    assert len(episodes) <= EPISODES_PER_TASK, f"{len(episodes)} episodes in one task"
    setup, n = worker.setup, len(episodes)
    Z, H = setup.z_size, setup.hidden_size
    frames = np.zeros((n, 64, 64, 3), np.uint8)
    h, c = np.zeros((n, H), np.float32), np.zeros((n, H), np.float32)
    params = np.stack([np.asarray(p, np.float32) for _, p, _, _ in episodes])
    rngs = [np.random.default_rng([setup.noise_seed, seed]) for seed, _, _, _ in episodes]
    shakes = [np.random.default_rng([setup.noise_seed, seed, 1]) for seed, _, _, _ in episodes]
    returns, steps = np.zeros(n), np.zeros(n, int)
    logs = [{"frames": [], "actions": [], "rewards": [], "terminations": []}
            for _ in episodes]
    for i, (seed, _, _, _) in enumerate(episodes):
        observation, _ = worker.envs[i].reset(seed=int(seed))
        frames[i] = worker.env.preprocess(observation)
        logs[i]["frames"].append(frames[i].copy())
    alive = list(range(n))
    while alive:
        B = batch_rows(len(alive))
        rows = alive + [alive[0]] * (B - len(alive))  # padding rows repeat a live one
        eps = np.zeros((B, Z), np.float32)
        for row, i in enumerate(alive):
            eps[row] = rngs[i].standard_normal(Z)
        out = worker.step(frames[rows], h[rows], c[rows], params[rows], eps)
        a, h_new, c_new = (x.numpy() for x in out)
        still = []
        for row, i in enumerate(alive):
            h[i], c[i] = h_new[row], c_new[row]
            action = a[row]
            noise = episodes[i][3]
            if noise > 0:
                action = np.clip(action + noise * shakes[i].standard_normal(action.shape),
                                 worker.env.low, worker.env.high).astype(np.float32)
            observation, reward, terminated, truncated, _ = worker.envs[i].step(action)
            frames[i] = worker.env.preprocess(observation)
            returns[i] += reward
            steps[i] += 1
            record = episodes[i][2]
            if record:
                logs[i]["actions"].append(action)
            if record == "episode":
                logs[i]["frames"].append(frames[i].copy())
                logs[i]["rewards"].append(reward)
                logs[i]["terminations"].append(terminated)
            if not (terminated or truncated):
                still.append(i)
        alive = still
    return [(float(returns[i]), int(steps[i]), _recorded(episodes[i][2], logs[i]))
            for i in range(n)]


def _recorded(record, log: dict):
    if not record:
        return None
    if record == "actions":
        return np.stack(log["actions"])
    return {"frames": np.stack(log["frames"]),
            "actions": np.stack(log["actions"]).astype(np.float32),
            "rewards": np.asarray(log["rewards"], np.float32),
            "terminations": np.asarray(log["terminations"], np.uint8)}


def run_real_episodes(backend, setup: AgentSetup, params: np.ndarray, seeds: list[int],
                      progress: bool = True, desc: str = "real", done: dict | None = None,
                      on_episode=None, max_crashes: int = 3, record=False,
                      on_recorded=None, noise: float = 0.0, on_length=None) -> np.ndarray:
    """Run episode i with controller ``params[i]`` on the track of ``seeds[i]`` on ``backend``;
    returns the episode returns in the order of ``seeds``. Episodes in ``done`` (index ->
    return) keep their returns; ``on_episode(index, return)`` is called as each other one
    ends. The episodes of a worker that crashes are redone on a fresh one; ``max_crashes``
    crashes in a row stop the run with an error. With ``record`` ("actions" or "episode", see
    ``run_agent_episodes``), ``on_recorded(index, recorded)`` is called for every episode of
    every task run (benchmarks replay the actions; collection with a controller writes the
    rollouts). ``noise``: Gaussian noise added to every action. ``on_length(index, steps)`` is
    called with the length of each episode not in ``done``, before ``on_episode``."""
    assert len(params) == len(seeds), f"{len(params)} controllers for {len(seeds)} seeds"
    done = dict(done or {})
    returns = np.zeros(len(seeds))
    tasks, members = {}, {}
    for indices in episode_tasks(len(seeds)):
        if all(i in done for i in indices):
            continue
        # A task is always run whole, finished episodes included: its shape fixes the floats.
        tasks[indices[0]] = [(seeds[i], params[i], record, noise) for i in indices]
        members[indices[0]] = indices
    bar = tqdm(total=len(seeds), initial=len(done), desc=desc, unit="ep", disable=not progress)

    def crashed(worker, task):
        where = "a worker" if worker is None else f"env worker {worker}"
        bar.write(f"{where} crashed; redoing episode(s) {', '.join(map(str, members[task]))}")

    try:
        for task, results in backend.run(run_agent_episodes, tasks, shared=setup,
                                         max_crashes=max_crashes, on_crash=crashed):
            for index, (value, steps, recorded) in zip(members[task], results):
                if record:
                    on_recorded(index, recorded)
                if index in done:
                    continue
                done[index] = value
                bar.update(1)
                if on_length is not None:
                    on_length(index, steps)
                if on_episode is not None:
                    on_episode(index, value)
    except WorkerCrashes as error:
        raise WorldModelsError(
            f"env workers crashed {error.crashes} times in a row; {len(done)} finished episodes "
            "are kept: re-run the same command to continue"
        ) from None
    finally:
        bar.close()
    for index, value in done.items():
        returns[index] = value
    return returns


def collect_with_controller(directory: Path, world: World, controller, params: np.ndarray,
                            seeds: list[int], first_index: int, noise: float,
                            max_steps: int, label: str, workers: int | None = None,
                            ray_address: str | None = None, progress: bool = True) -> dict:
    """Collect one episode per seed with a trained controller (V + M + C, as in the real env)
    plus Gaussian action noise of std ``noise``, as episodes ``first_index``, ... of
    ``directory``; episodes already there are kept (a killed run resumes). ``label`` is stored
    as the episodes' policy. Iterative training: M learns what this controller's own driving
    does, mistakes included."""
    from worldmodels.config import CollectConfig
    from worldmodels.core.workers import make_backend
    from worldmodels.data.collect import write_collected
    from worldmodels.data.store import episode_path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = CollectConfig(env_id=world.env_id, max_steps=max_steps, policy=label)
    indices = [first_index + i for i in range(len(seeds))]
    done = {i: 0.0 for i, index in enumerate(indices) if episode_path(directory, index).exists()}
    setup = AgentSetup.from_world(world, controller, max_steps, noise_seed=first_index)
    returns = {}

    def write(i, episode):
        returns[i] = float(episode["rewards"].sum())
        if not episode_path(directory, indices[i]).exists():
            write_collected(directory, indices[i], seeds[i], config, episode)

    tasks = len(episode_tasks(len(seeds) - len(done)))
    with make_backend(workers, ray_address, tasks=max(tasks, 1)) as backend:
        run_real_episodes(backend, setup, np.repeat(params[None], len(seeds), 0), seeds,
                          progress=progress, desc="collect (C + noise)", done=done,
                          record="episode", on_recorded=write, noise=noise)
    values = [returns[i] for i in returns if i not in done]
    return {"collected": len(values),
            "mean_return": float(np.mean(values)) if values else float("nan")}
