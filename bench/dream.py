"""The dream targets: one generation of the paper's CarRacing setting against its 15 s budget
and against a loop of one rollout at a time; TakeCover's paper-size dream against CarRacing's.
The dream runs at the temperature of the preset it stands for (``controller.temperature``)."""

from __future__ import annotations

import time

import numpy as np

from .rows import TAKECOVER, Row, ratio_row

_PRESETS = {"CarRacing-v3": "paper", TAKECOVER: "doom-paper"}


def _temperature(env_id: str) -> float:
    """The dream temperature of the paper preset of ``env_id``."""
    from worldmodels.config import get_preset

    return get_preset(_PRESETS[env_id]).controller.temperature


def _dream_model(z_size: int, hidden: int, env_id: str):
    """M (random weights, but a done head that never fires: every agent runs all the steps)
    and C of the given sizes."""
    from worldmodels.envs import get_env
    from worldmodels.model.controller import Controller
    from worldmodels.model.rnn import MDNRNN

    rnn = MDNRNN(z_size, hidden, 5, action_size=get_env(env_id).action_size)
    rnn.done_head.kernel.assign(np.zeros(rnn.done_head.kernel.shape, np.float32))
    rnn.done_head.bias.assign([-1000.0])  # sigmoid(-1000) is exactly 0 in float32
    return rnn, Controller("zh", z_size, hidden, env_id)


def bench_dream(population: int, trials: int, steps: int, naive_steps: int, log,
                generations: int = 1, env_id: str = "CarRacing-v3") -> list[Row]:
    """CarRacing's dream (z 32, LSTM 256) against the 15 s a generation of 1,000 steps may
    take, and against a loop of one rollout at a time; or TakeCover's paper-size dream (z 64,
    LSTM 512, one output), its cost for a generation, against CarRacing's."""
    if env_id != "CarRacing-v3":
        return _bench_doom_dream(population, trials, steps, log)
    from worldmodels.model.dream import make_dream, run_dream

    temperature = _temperature(env_id)
    rnn, spec = _dream_model(32, 256, env_id)
    agents = population * trials
    rng = np.random.default_rng(0)
    candidates = rng.normal(0, 0.1, (population, spec.param_count)).astype(np.float32)
    params = np.repeat(candidates, trials, axis=0)
    z0 = rng.normal(size=(agents, 32)).astype(np.float32)
    dream = make_dream(rnn, spec)
    run_dream(dream, params, z0, temperature, 2, 0)  # trace
    walls = []
    for generation in range(generations):
        started = time.perf_counter()
        _, lengths = run_dream(dream, params, z0, temperature, steps, 1 + generation)
        walls.append(time.perf_counter() - started)
        assert lengths.min() == steps, "every dream must run to the end for the benchmark"
        log(f"dream: {agents} agents x {steps} steps in {walls[-1]:.1f} s")
    wall = float(np.median(walls))
    batched_rate = agents * steps / wall
    naive_rate = _one_rollout_rate(rnn, spec, params[:1], z0[:1], temperature, naive_steps)
    log(f"dream: batched {batched_rate:.0f} agent-steps/s, one rollout at a time "
        f"{naive_rate:.0f} agent-steps/s")
    return [
        ratio_row("dream: one generation, seconds vs 15 s", wall * 1000 / steps, 15.0, "s",
                  goal_max=1.0,
                  detail=f"{population} x {trials} agents x {steps} steps, median of "
                         f"{generations} generation(s)"
                         + ("" if steps == 1000 else ", scaled to 1,000 steps")),
        ratio_row("dream: batched vs one-rollout loop agent-steps/s", batched_rate,
                  naive_rate, "agent-steps/s", goal_min=50.0,
                  detail=f"loop: {naive_steps} steps of one rollout with the same model"),
    ]


def _one_rollout_rate(rnn, spec, params, z0, temperature: float, steps: int) -> float:
    """Agent-steps/s of the straightforward loop: one rollout at a time, one compiled step per
    time step."""
    import tensorflow as tf

    from worldmodels.model.dream import sample_next_z

    @tf.function
    def one_step(p, z, h, c, seed):
        action = spec.act_batch(p, z, h)
        predictions, (h2, c2) = rnn.step(tf.concat([z, action], -1), [h, c])
        z2 = sample_next_z(predictions, tf.constant(temperature), seed)
        done = tf.random.stateless_uniform((1,), seed + 1) < tf.sigmoid(
            predictions["done_logit"])
        return z2, h2, c2, predictions["reward"], done

    p = tf.constant(params)
    z, h, c = tf.constant(z0), tf.zeros((1, spec.hidden_size)), tf.zeros((1, spec.hidden_size))
    one_step(p, z, h, c, tf.constant([0, 0], tf.int64))
    started = time.perf_counter()
    total = 0.0
    for t in range(steps):
        z, h, c, reward, done = one_step(p, z, h, c, tf.constant([1, t], tf.int64))
        total += float(reward[0])
        if bool(done[0]):
            break
    return steps / (time.perf_counter() - started)


def _dream_seconds(z_size: int, hidden: int, env_id: str, agents: int, steps: int) -> float:
    """Seconds of one batched dream of ``agents`` x ``steps`` (every dream runs to the end) at
    the temperature of ``env_id``'s paper preset."""
    from worldmodels.model.dream import make_dream, run_dream

    temperature = _temperature(env_id)
    rnn, spec = _dream_model(z_size, hidden, env_id)
    rng = np.random.default_rng(0)
    params = rng.normal(0, 0.1, (agents, spec.param_count)).astype(np.float32)
    z0 = rng.normal(size=(agents, z_size)).astype(np.float32)
    dream = make_dream(rnn, spec)
    run_dream(dream, params, z0, temperature, 2, 0)  # trace
    started = time.perf_counter()
    _, lengths = run_dream(dream, params, z0, temperature, steps, 1)
    assert lengths.min() == steps, "every dream must run to the end for the benchmark"
    return time.perf_counter() - started


def _bench_doom_dream(population: int, trials: int, steps: int, log) -> list[Row]:
    agents = population * trials
    doom = _dream_seconds(64, 512, TAKECOVER, agents, steps)
    car = _dream_seconds(32, 256, "CarRacing-v3", agents, steps)
    log(f"doom-dream: {agents} agents x {steps} steps in {doom:.1f} s (CarRacing's M: "
        f"{car:.1f} s)")
    return [ratio_row("doom-dream: one generation (z 64, LSTM 512), seconds vs CarRacing's",
                      doom, car, "s", goal_max=4.0,
                      detail=f"{population} x {trials} agents x {steps} steps; an LSTM of "
                             "512 does 4x the multiply-adds of 256")]
