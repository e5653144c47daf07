"""The dream: controllers driven inside M, every agent of a population batched into one
TensorFlow while-loop (one LSTM step per time step for all agents)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from worldmodels.config import DreamSpec
from worldmodels.envs.carracing import TRACK_TOTAL, pay_as_track
from worldmodels.model.controller import Controller
from worldmodels.model.rnn import MDNRNN


@tf.function(jit_compile=True)
def _mixture_draw(logits, mu, logstd, uniform, eps, temperature):
    """The arithmetic of one draw per latent dimension, fused by XLA: the component by the
    inverse CDF of softmax(logits / tau) at ``uniform``, then its mean plus its standard
    deviation * sqrt(tau) * ``eps``. (The random numbers come from TensorFlow's own generator
    outside: XLA's is slow on CPU.)"""
    cdf = tf.cumsum(tf.nn.softmax(logits / temperature), axis=-1)
    component = tf.reduce_sum(tf.cast(cdf[..., :-1] < uniform[..., None], tf.int32), -1)
    chosen = tf.one_hot(component, tf.shape(logits)[-1])
    chosen_mu = tf.reduce_sum(mu * chosen, axis=-1)
    chosen_logstd = tf.reduce_sum(logstd * chosen, axis=-1)
    return chosen_mu + tf.exp(chosen_logstd) * tf.sqrt(temperature) * eps


def sample_next_z(predictions: dict, temperature, seed):
    """Sample z_{t+1} from the mixture at ``temperature``: logits / tau, noise * sqrt(tau).
    ``seed`` is a stateless seed of shape (2,)."""
    logits = predictions["logits"]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    shape = tf.shape(logits)[:-1]
    uniform = tf.random.stateless_uniform(shape, seeds[0])
    eps = tf.random.stateless_normal(shape, seeds[1])
    return _mixture_draw(logits, predictions["mu"], predictions["logstd"], uniform, eps,
                         tf.cast(temperature, tf.float32))


def make_dream(rnn: MDNRNN, controller: Controller | None = None, spec: DreamSpec | None = None,
               tile_value: float = 0.0, record: bool = False):
    """A compiled function (params (B, P), z0 (B, Z), h0 and c0 (B, H) or None for a blank
    memory, temperature, max_steps, seed (2,)) ->
    (returns (B,), lengths (B,)) that rolls every agent out inside M until its sampled done or
    ``max_steps``. ``controller`` defaults to the linear one on [z, h]. ``spec``
    (``config.DreamSpec``, default: every option off) says how C was dreamt; its temperature,
    burn-in and steps are the caller's (``run_dream``'s arguments). With ``dropout`` > 0,
    M's heads read its output through a fresh dropout mask at every step of every dream (MC
    dropout: the dream is most random where M's training data say least). With
    ``action_noise`` > 0, Gaussian noise of that std is added to C's actions at every step
    and clipped to the action box, as `evaluate --noise` drives in the real env. With
    ``pay_as_track`` and the collected tracks' ``tile_value`` the dream pays as a track does
    (``envs.carracing.pay_as_track``): no dream can return more than 1,000 less 0.1 a step,
    and a dream whose tiles reach 1,000 ends (the lap is done). With ``dropout_mask``
    "dream", each dream draws its dropout mask once and keeps it to its end (one model
    sampled per dream, as Dropout's Dream Land did) instead of a fresh mask at every step.
    With ``steer_penalty`` > 0, each step's score also loses that times
    |steer_t - steer_t-1| of C's own steering (before the action noise; nothing at the first
    step): smooth control, against the bang-bang zigzag. With ``record``, it also returns
    every dream's z (B, T, Z) and rewards (B, T) of steps 1..T (zero after the dream's done),
    for pictures of it.

    The env of ``controller`` (``EnvSpec``) says how the dream pays and ends: with a
    ``step_reward`` (TakeCover: 1), each step survived pays that instead of M's predicted
    reward; with a ``done_threshold`` (TakeCover: 0.5, as the paper read it), a dream ends
    where M's done probability passes it instead of by a draw.

    (Longer than most functions here: its body is the one compiled while-loop of the dream,
    every agent and every step, which reads best whole.)"""
    if controller is None:
        controller = Controller("zh", rnn.z_size, rnn.hidden_size)
    spec = spec or DreamSpec()
    dropout, action_noise, steer_penalty = spec.dropout, spec.action_noise, spec.steer_penalty
    mask_per_dream = spec.dropout_mask == "dream"
    tile_value = tile_value if spec.pay_as_track else 0.0
    env = controller.env
    low, high = tf.constant(env.low), tf.constant(env.high)

    @tf.function(reduce_retracing=True)
    def dream(params, z0, h0, c0, temperature, max_steps, seed):
        B = tf.shape(z0)[0]
        state = rnn.initial_state(B) if h0 is None else (h0, c0)
        alive = tf.ones((B,), tf.bool)
        totals = tf.zeros((B,))
        paid = tf.zeros((B,))
        lengths = tf.zeros((B,), tf.int32)
        last_steer = tf.zeros((B,))
        weights = rnn.fused_weights()
        mask = None
        if mask_per_dream and dropout > 0:
            keep = tf.random.stateless_uniform(
                (B, rnn.hidden_size), tf.random.experimental.stateless_fold_in(seed, -1))
            mask = tf.cast(keep >= dropout, tf.float32) / (1.0 - dropout)

        def body(t, z, h, c, alive, totals, lengths, paid, last_steer, *trace):
            step_seed = tf.random.experimental.stateless_fold_in(seed, t)
            seeds = tf.random.experimental.stateless_split(step_seed, 2)
            action = controller.act_batch(params, z, h, c)
            steer = action[:, 0]
            if action_noise > 0:
                shake = tf.random.stateless_normal(
                    tf.shape(action), tf.random.experimental.stateless_fold_in(step_seed, 3))
                action = tf.clip_by_value(action + action_noise * shake, low, high)
            drop_seed = tf.random.experimental.stateless_fold_in(step_seed, 2)
            predictions, (h2, c2) = rnn.fused_step(tf.concat([z, action], -1), (h, c), weights,
                                                   dropout, drop_seed, mask)
            z2 = sample_next_z(predictions, temperature, seeds[0])
            p_done = tf.sigmoid(predictions["done_logit"])
            if env.done_threshold is None:
                done = tf.random.stateless_uniform((B,), seeds[1]) < p_done
            else:
                done = p_done > env.done_threshold
            live = tf.cast(alive, tf.float32)
            if env.step_reward is None:
                reward = predictions["reward"]
            else:
                reward = tf.fill((B,), env.step_reward)
            if tile_value > 0:
                reward, now_paid = pay_as_track(reward, paid, tile_value)
                paid = paid + (now_paid - paid) * live
                done = tf.logical_or(done, paid >= TRACK_TOTAL - 1e-3)
            if steer_penalty > 0:
                moved = tf.abs(steer - last_steer) * tf.cast(t > 0, tf.float32)
                reward = reward - steer_penalty * moved
            totals = totals + reward * live
            lengths = lengths + tf.cast(alive, tf.int32)
            alive = tf.logical_and(alive, tf.logical_not(done))
            if record:
                trace = (trace[0].write(t, z2), trace[1].write(t, reward * live))
            return (t + 1, z2, h2, c2, alive, totals, lengths, paid, steer, *trace)

        def cond(t, z, h, c, alive, totals, lengths, paid, last_steer, *trace):
            return tf.logical_and(t < max_steps, tf.reduce_any(alive))

        trace = (tf.TensorArray(tf.float32, size=0, dynamic_size=True),
                 tf.TensorArray(tf.float32, size=0, dynamic_size=True)) if record else ()
        loop_vars = (tf.constant(0), z0, state[0], state[1], alive, totals, lengths, paid,
                     last_steer)
        # The batch may change size inside the loop's shape inference (a single dream is
        # (1, ...) on entry, (None, ...) after a step): declare it unknown.
        invariants = tuple(tf.TensorShape([None, *v.shape[1:]]) if v.shape.rank else v.shape
                           for v in loop_vars)
        loop = tf.while_loop(cond, body, (*loop_vars, *trace),
                             shape_invariants=(*invariants, *(tf.TensorShape(None)
                                                              for _ in trace)))
        if record:
            return (loop[5], loop[6], tf.transpose(loop[9].stack(), [1, 0, 2]),
                    tf.transpose(loop[10].stack()))
        return loop[5], loop[6]

    return dream


def initial_latents(mu0: np.ndarray, logvar0: np.ndarray, count: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """z_0 for ``count`` dreams: first frames of random real episodes, sampled from V's
    posterior. Returns (z0, episode indices)."""
    picks = rng.integers(0, len(mu0), size=count)
    eps = rng.standard_normal((count, mu0.shape[1])).astype(np.float32)
    return (mu0[picks] + np.exp(0.5 * logvar0[picks]) * eps).astype(np.float32), picks


def burn_in_starts(rnn: MDNRNN, starts: dict, count: int, rng: np.random.Generator):
    """Dream starts after a burn-in: for ``count`` random collected episodes, M reads the real
    z (sampled from V's posterior) and actions of the first ``burn_in`` steps; the dream starts
    from z at step ``burn_in`` with M's memory of them. ``starts`` holds mu and logvar of steps
    0..burn_in and the actions of steps 0..burn_in-1 of every episode (see models.load_world).
    Returns (z0, (h0, c0), episode indices)."""
    mu, logvar, actions = starts["mu"], starts["logvar"], starts["actions"]
    picks = rng.integers(0, len(mu), size=count)
    eps = rng.standard_normal(mu[picks].shape).astype(np.float32)
    z = (mu[picks] + np.exp(0.5 * logvar[picks]) * eps).astype(np.float32)
    inputs = np.concatenate([z[:, :-1], actions[picks]], axis=-1)
    _, (h, c) = rnn(tf.constant(inputs, tf.float32))
    return z[:, -1], (h.numpy(), c.numpy()), picks


def run_dream(dream, params: np.ndarray, z0: np.ndarray, temperature: float, max_steps: int,
              seed: int, state: tuple | None = None) -> tuple[np.ndarray, ...]:
    """Run the compiled dream on NumPy inputs from z0 and M's ``state`` (h, c; default a blank
    memory); returns (returns, lengths) as NumPy (and z and rewards for a recording dream)."""
    h0, c0 = (None, None) if state is None else (tf.constant(state[0], tf.float32),
                                                 tf.constant(state[1], tf.float32))
    outputs = dream(
        tf.constant(params, tf.float32), tf.constant(z0, tf.float32), h0, c0,
        tf.constant(float(temperature)), tf.constant(int(max_steps)),
        tf.constant([seed % (2**31), 0], tf.int64),
    )
    return tuple(output.numpy() for output in outputs)
