"""The whole agent (V + M + C) in the real env: many episodes over a pool of env processes,
the agents' forward passes batched across envs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from worldmodels.controller import Controller
from worldmodels.env import EnvPool
from worldmodels.errors import WorldModelsError
from worldmodels.rnn import MDNRNN
from worldmodels.vae import ConvVAE, to_unit


def make_agent_step(vae: ConvVAE, rnn: MDNRNN, controller: Controller | None = None):
    """Compiled (frames, h, c, params, eps) -> (actions, h', c'): encode, act on z (and h),
    then advance M with [z, a]. ``controller`` defaults to the linear one on [z, h]."""
    if controller is None:
        controller = Controller("zh", rnn.z_size, rnn.hidden_size)

    # XLA: one compiled program per batch size; on one CPU thread it takes 2.2 ms instead of
    # 3.3 ms for a batch of 2 and 3.1 instead of 3.9 for 4 (the groups of an EnvPool).
    @tf.function(jit_compile=True)
    def step(frames, h, c, params, eps):
        mu, logvar = vae.encode(to_unit(frames))
        z = mu + tf.exp(0.5 * logvar) * eps
        actions = controller.act_batch(params, z, h)
        _, (h2, c2) = rnn.step(tf.concat([z, actions], -1), [h, c])
        return actions, h2, c2

    return step


def run_real_episodes(pool: EnvPool, step, params: np.ndarray, seeds: list[int],
                      z_size: int, hidden_size: int, noise_seed: int, progress: bool = True,
                      desc: str = "real", done: dict | None = None, on_episode=None,
                      max_crashes: int = 3, actions_out: dict | None = None) -> np.ndarray:
    """Run episode i with controller ``params[i]`` on the track of ``seeds[i]``; returns the
    episode returns in the order of ``seeds``. Episodes in ``done`` (index -> return) are not
    run again; ``on_episode(index, return)`` is called as each one ends. An episode whose
    worker crashes is redone on a fresh worker; ``max_crashes`` crashes in a row with no
    episode finished in between stop the run with an error. The sampling noise of each episode
    comes from its own generator, so scores do not depend on which env ran it. With
    ``actions_out`` (a dict), the actions of each episode are recorded there (benchmarks replay
    them).

    The pool's slots form two groups: while one group's envs step, the agents of the other
    group are encoded and advanced in one batched call, so env processes do not wait for the
    model."""
    assert len(params) == len(seeds), f"{len(params)} controllers for {len(seeds)} seeds"
    S = pool.size
    done = dict(done or {})
    returns = np.zeros(len(seeds))
    for index, value in done.items():
        returns[index] = value
    frames = np.zeros((S, 64, 64, 3), np.uint8)
    h = np.zeros((S, hidden_size), np.float32)
    c = np.zeros((S, hidden_size), np.float32)
    slot_params = np.zeros((S, params.shape[1]), np.float32)
    rngs = [None] * S
    episode_of = [-1] * S
    resetting = [False] * S
    pending = [i for i in range(len(seeds)) if i not in done][::-1]
    groups = pool.groups()
    waiting: list[set[int]] = [set() for _ in groups]  # workers with a message out, per group
    bar = tqdm(total=len(seeds), initial=len(done), desc=desc, unit="ep", disable=not progress)
    crashes = 0

    def start(slot, episode):
        episode_of[slot], resetting[slot] = episode, True
        returns[episode] = 0.0
        h[slot] = c[slot] = 0.0
        slot_params[slot] = params[episode]
        rngs[slot] = np.random.default_rng([noise_seed, seeds[episode]])
        if actions_out is not None:
            actions_out[episode] = []

    def crashed(worker):
        nonlocal crashes
        crashes += 1
        if crashes > max_crashes:
            bar.close()
            raise WorldModelsError(
                f"env workers crashed {crashes} times in a row; {len(done)} finished episodes "
                "are kept: re-run the same command to continue"
            )
        lost = [episode_of[s] for s in pool.slots_of(worker) if episode_of[s] >= 0]
        bar.write(f"env worker {worker} crashed; redoing episode(s) "
                  f"{', '.join(map(str, lost))}")
        pool.restart(worker)
        for waiting_workers in waiting:
            waiting_workers.discard(worker)
        for slot in pool.slots_of(worker):
            if episode_of[slot] >= 0:
                start(slot, episode_of[slot])

    def finish(slot):
        nonlocal crashes
        episode = episode_of[slot]
        done[episode] = float(returns[episode])
        crashes = 0
        bar.update(1)
        if on_episode is not None:
            on_episode(episode, done[episode])
        episode_of[slot] = -1
        if pending:
            start(slot, pending.pop())

    for slot in pool.spread()[:len(pending)]:
        start(slot, pending.pop())
    while any(e >= 0 for e in episode_of):
        for g, slots in enumerate(groups):
            if waiting[g]:
                results, dead = pool.receive(sorted(waiting[g]))
                waiting[g] = set()
                for slot, result in results.items():
                    if episode_of[slot] < 0:
                        continue
                    if resetting[slot]:
                        frames[slot], resetting[slot] = result, False
                        continue
                    frame, reward, terminated, truncated = result
                    frames[slot] = frame
                    returns[episode_of[slot]] += reward
                    if terminated or truncated:
                        finish(slot)
                for worker in dead:
                    crashed(worker)
            ops = {}
            thinking = [(row, slot) for row, slot in enumerate(slots)
                        if episode_of[slot] >= 0 and not resetting[slot]]
            if thinking:
                eps = np.zeros((len(slots), z_size), np.float32)
                for row, slot in thinking:
                    eps[row] = rngs[slot].standard_normal(z_size)
                actions, h_new, c_new = step(frames[slots], h[slots], c[slots],
                                             slot_params[slots], eps)
                actions, h_new, c_new = actions.numpy(), h_new.numpy(), c_new.numpy()
                for row, slot in thinking:
                    h[slot], c[slot] = h_new[row], c_new[row]
                    ops[slot] = ("step", actions[row])
                    if actions_out is not None:
                        actions_out[episode_of[slot]].append(actions[row])
            for slot in slots:
                if episode_of[slot] >= 0 and resetting[slot]:
                    ops[slot] = ("reset", seeds[episode_of[slot]])
            if ops:
                sent, dead = pool.send(ops)
                waiting[g] = sent
                for worker in dead:
                    crashed(worker)
    bar.close()
    return returns
