"""The whole agent (V + M + C) in the real env: many episodes over a pool of env processes,
the agents' forward passes batched across envs."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from worldmodels.controller import act_batch
from worldmodels.env import EnvPool
from worldmodels.rnn import MDNRNN
from worldmodels.vae import ConvVAE, to_unit


def make_agent_step(vae: ConvVAE, rnn: MDNRNN):
    """Compiled (frames, h, c, params, eps) -> (actions, h', c'): encode, act on [z, h], then
    advance M with [z, a]."""

    @tf.function(reduce_retracing=True)
    def step(frames, h, c, params, eps):
        mu, logvar = vae.encode(to_unit(frames))
        z = mu + tf.exp(0.5 * logvar) * eps
        actions = act_batch(params, tf.concat([z, h], axis=-1))
        _, (h2, c2) = rnn.step(tf.concat([z, actions], -1), [h, c])
        return actions, h2, c2

    return step


def run_real_episodes(pool: EnvPool, step, params: np.ndarray, seeds: list[int],
                      z_size: int, hidden_size: int, rng: np.random.Generator,
                      progress: bool = True, desc: str = "real") -> np.ndarray:
    """Run episode i with controller ``params[i]`` on the track of ``seeds[i]``; returns the
    episode returns in the order of ``seeds``."""
    assert len(params) == len(seeds), f"{len(params)} controllers for {len(seeds)} seeds"
    S = pool.size
    returns = np.zeros(len(seeds))
    frames = np.zeros((S, 64, 64, 3), np.uint8)
    h = np.zeros((S, hidden_size), np.float32)
    c = np.zeros((S, hidden_size), np.float32)
    slot_params = np.zeros((S, params.shape[1]), np.float32)
    episode_of = [-1] * S
    pending = list(range(len(seeds)))[::-1]
    bar = tqdm(total=len(seeds), desc=desc, unit="ep", disable=not progress)

    def start(slot):
        episode = pending.pop()
        episode_of[slot] = episode
        frames[slot] = pool.reset(slot, seeds[episode])
        h[slot] = c[slot] = 0.0
        slot_params[slot] = params[episode]

    for slot in range(min(S, len(pending))):
        start(slot)
    while any(e >= 0 for e in episode_of):
        eps = rng.standard_normal((S, z_size)).astype(np.float32)
        actions, h_new, c_new = step(frames, h, c, slot_params, eps)
        actions, h[:], c[:] = actions.numpy(), h_new.numpy(), c_new.numpy()
        active = {s: actions[s] for s in range(S) if episode_of[s] >= 0}
        for slot, (frame, reward, terminated, truncated) in pool.step(active).items():
            frames[slot] = frame
            returns[episode_of[slot]] += reward
            if terminated or truncated:
                bar.update(1)
                episode_of[slot] = -1
                if pending:
                    start(slot)
    bar.close()
    return returns
