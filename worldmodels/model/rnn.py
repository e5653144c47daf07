"""M: the MDN-RNN. An LSTM reads [z_t, a_t] and predicts, per latent dimension, a mixture of
Gaussians for z_{t+1}, plus the reward of the step (regression) and whether the episode ends
(Bernoulli), so the dream can score and end episodes."""

from __future__ import annotations

from pathlib import Path

import h5py
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import layers

from worldmodels.config import RnnConfig
from worldmodels.core import checkpoint
from worldmodels.core.artifacts import write_csv
from worldmodels.data.prefetch import prefetch
from worldmodels.data.store import read_windows
from worldmodels.model.training import Loop, run_epochs

tfd = tfp.distributions
REFERENCE_PARAMETERS = 422_368  # LSTM 256 + MDN head, without reward and done heads


@tf.function(jit_compile=True)
def _lstm_gates(gates, bias, c):
    """The LSTM's gate arithmetic (Keras order i, f, g, o), fused by XLA into one pass."""
    i, f, g, o = tf.split(gates + bias, 4, axis=-1)
    c2 = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    return tf.sigmoid(o) * tf.tanh(c2), c2


class MDNRNN(keras.Model):
    """LSTM over [z, a] with an MDN head (logits, means, log-stds per latent dimension) and
    reward and done heads."""

    def __init__(self, z_size=32, hidden_size=256, mixtures=5, dropout=0.0, action_size=3,
                 **kwargs):
        super().__init__(**kwargs)
        self.z_size, self.hidden_size, self.mixtures = z_size, hidden_size, mixtures
        self.action_size = action_size
        self.dropout = float(dropout)
        self.lstm = layers.LSTM(hidden_size, return_sequences=True, return_state=True,
                                name="lstm")
        self.mdn_head = layers.Dense(z_size * mixtures * 3, name="mdn")
        self.reward_head = layers.Dense(1, name="reward")
        self.done_head = layers.Dense(1, name="done")
        self.build((None, None, z_size + action_size))

    def build(self, input_shape):
        self.lstm.build(input_shape)
        for head in (self.mdn_head, self.reward_head, self.done_head):
            head.build((None, self.hidden_size))
        self.built = True

    def heads(self, h) -> dict:
        """Predictions from LSTM outputs of shape (..., hidden)."""
        params = self.mdn_head(h)
        shape = tf.concat([tf.shape(h)[:-1], [self.z_size, 3 * self.mixtures]], axis=0)
        logits, mu, logstd = tf.split(tf.reshape(params, shape), 3, axis=-1)
        return {
            "logits": logits,
            "mu": mu,
            "logstd": logstd,
            "reward": self.reward_head(h)[..., 0],
            "done_logit": self.done_head(h)[..., 0],
        }

    def call(self, inputs, initial_state=None, training=False):
        """inputs (B, T, z+A) -> predictions for every step, and the final (h, c)."""
        outputs, h, c = self.lstm(inputs, initial_state=initial_state, training=training)
        if training and self.dropout > 0:
            # Dropout on what the heads read, not on the memory carried to the next step.
            outputs = tf.nn.dropout(outputs, self.dropout)
        return self.heads(outputs), (h, c)

    def step(self, inputs, state):
        """One step for a batch: inputs (B, z+A), state [h, c] -> predictions, new state."""
        h, new_state = self.lstm.cell(inputs, state)
        return self.heads(h), new_state

    def fused_weights(self) -> tuple:
        """The weights of ``fused_step``: the LSTM's input and recurrent kernels stacked, and
        the three heads' kernels side by side (read once per dream, outside its loop)."""
        cell = self.lstm.cell
        heads = (self.mdn_head, self.reward_head, self.done_head)
        return (tf.concat([cell.kernel, cell.recurrent_kernel], 0),
                tf.convert_to_tensor(cell.bias),
                tf.concat([head.kernel for head in heads], 1),
                tf.concat([head.bias for head in heads], 0))

    def fused_step(self, inputs, state, weights, dropout=0.0, seed=None, mask=None):
        """``step`` with one matmul for the LSTM and one for all heads (the dream's inner loop;
        the same numbers as ``step``, fewer ops). With ``dropout`` > 0 the heads read the
        output through a dropout mask drawn from the stateless ``seed`` (M's training dropout
        kept on while dreaming), or through ``mask`` when given (a mask kept for a whole dream,
        already scaled by 1 / (1 - dropout)); the memory passed on is never dropped."""
        kernel, bias, head_kernel, head_bias = weights
        h, c = state
        gates = tf.matmul(tf.concat([inputs, h], -1), kernel)
        h2, c2 = _lstm_gates(gates, bias, c)
        seen = h2
        if mask is not None:
            seen = h2 * mask
        elif dropout > 0:
            keep = tf.random.stateless_uniform(tf.shape(h2), seed) >= dropout
            seen = h2 * tf.cast(keep, h2.dtype) / (1.0 - dropout)
        out = tf.matmul(seen, head_kernel) + head_bias
        mdn_size = self.z_size * self.mixtures * 3
        params = tf.reshape(out[:, :mdn_size], (-1, self.z_size, 3 * self.mixtures))
        logits, mu, logstd = tf.split(params, 3, axis=-1)
        predictions = {"logits": logits, "mu": mu, "logstd": logstd,
                       "reward": out[:, mdn_size], "done_logit": out[:, mdn_size + 1]}
        return predictions, (h2, c2)

    def initial_state(self, batch_size: int):
        zeros = tf.zeros((batch_size, self.hidden_size))
        return [zeros, zeros]


def mixture(logits, mu, logstd, temperature=1.0):
    """The per-dimension Gaussian mixture, with logits divided by the temperature and the
    standard deviations scaled by sqrt(temperature)."""
    scale = tf.exp(logstd) * tf.sqrt(tf.cast(temperature, tf.float32))
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=logits / temperature),
        components_distribution=tfd.Normal(loc=mu, scale=scale),
    )


def mixture_mean(predictions: dict) -> np.ndarray:
    """Mean of M's per-dimension Gaussian mixture, (B, Z), from one step's predictions."""
    weights = tf.nn.softmax(predictions["logits"], axis=-1)
    return tf.reduce_sum(weights * predictions["mu"], axis=-1).numpy()


def open_loop(rnn: MDNRNN, z: np.ndarray, state: list, actions: np.ndarray) -> np.ndarray:
    """M's open-loop prediction: from z (B, Z) and its memory ``state`` ([h, c]), M reads
    the real ``actions`` (B, K, A) one step at a time and its own previous prediction (the
    mixture mean) as z; returns the K predicted z, (B, K, Z)."""
    predicted = np.zeros((len(z), actions.shape[1], z.shape[-1]), np.float32)
    for k in range(actions.shape[1]):
        step_in = np.concatenate([z, actions[:, k]], -1).astype(np.float32)
        predictions, state = rnn.step(tf.constant(step_in), list(state))
        z = predicted[:, k] = mixture_mean(predictions)
    return predicted


def mdn_log_prob(logits, mu, logstd, target):
    """log p(target) under the mixture, per latent dimension: shape of ``target``."""
    return mixture(logits, mu, logstd).log_prob(target)


def rnn_loss(predictions: dict, targets: dict, mask, config: RnnConfig) -> dict:
    """Masked mean losses: MDN negative log-likelihood per latent dimension, reward MSE (a step
    M over-predicts weighted ``config.reward_over_weight``), and the done cross-entropy with
    the rare positive class weighted. With ``reward_weight`` 0 (an env that pays per step
    survived, as TakeCover) the reward head is not trained and its loss is left out: it would
    be a number that means nothing."""
    steps = tf.maximum(tf.reduce_sum(mask), 1.0)
    log_prob = mdn_log_prob(predictions["logits"], predictions["mu"], predictions["logstd"],
                            targets["z"])
    mdn = -tf.reduce_sum(tf.reduce_mean(log_prob, axis=-1) * mask) / steps
    losses = {"mdn": mdn}
    if config.reward_weight > 0:
        error = predictions["reward"] - targets["reward"]
        over = tf.where(error > 0, config.reward_over_weight, 1.0)  # predicted more than paid
        losses["reward"] = tf.reduce_sum(over * tf.square(error) * mask) / steps
    done_terms = tf.nn.weighted_cross_entropy_with_logits(
        labels=targets["done"], logits=predictions["done_logit"],
        pos_weight=config.done_pos_weight,
    )
    losses["done"] = tf.reduce_sum(done_terms * mask) / steps
    total = mdn + config.reward_weight * losses.get("reward", 0.0) \
        + config.done_weight * losses["done"]
    return {"loss": total, **losses}


def make_batch(window: dict, rng: np.random.Generator) -> tuple:
    """Inputs [z_t, a_t] and targets (z_{t+1}, reward, done) from a window, with z re-sampled
    from the stored mu/logvar."""
    eps = rng.standard_normal(window["mu"].shape).astype(np.float32)
    z = window["mu"] + np.exp(0.5 * window["logvar"]) * eps
    inputs = np.concatenate([z[:, :-1], window["actions"]], axis=-1)
    targets = {"z": z[:, 1:], "reward": window["rewards"], "done": window["terminations"]}
    return inputs, targets, window["mask"]


def make_train_step(model: MDNRNN, optimizer, config: RnnConfig):
    """The compiled training step: (inputs, targets, mask) -> losses."""

    @tf.function(reduce_retracing=True)
    def train_step(inputs, targets, mask):
        with tf.GradientTape() as tape:
            predictions, _ = model(inputs, training=True)
            losses = rnn_loss(predictions, targets, mask, config)
        variables = model.trainable_variables
        gradients = tape.gradient(losses["loss"], variables)
        # An env paid per step survived trains no reward head (reward_weight 0): its gradient
        # is None. Zero moves Adam nothing, keeps the optimizer's variables those of a model
        # that trains every head (checkpoints stay interchangeable), and spares Keras's
        # "Gradients do not exist" warning in every TakeCover run.
        gradients = [tf.zeros_like(v) if g is None else g for g, v in zip(gradients, variables)]
        optimizer.apply_gradients(zip(gradients, variables))
        return losses

    return train_step


def epoch_batches(series, lengths: np.ndarray, config: RnnConfig, seed: int, epoch: int,
                  skip: int = 0):
    """The batches of one epoch, from batch ``skip`` on: one sequence per episode (see
    ``RnnConfig.windows``), the order, windows and noise of each batch derived from (seed,
    epoch, batch). ``series`` is the open series file (or any mapping of its arrays)."""
    for batch, (indices, starts, length) in enumerate(
            epoch_windows(lengths, config, seed, epoch)[skip:], start=skip):
        rng = np.random.default_rng([seed, epoch, batch])
        if starts is None:  # random windows: drawn per batch
            starts = [int(rng.integers(0, max(1, lengths[i] - length + 1))) for i in indices]
        yield make_batch(read_windows(series, indices, starts, length), rng)


LENGTH_STEP = 32
"""From-start sequences of a batch are padded to a multiple of this (few compiled shapes)."""


def epoch_windows(lengths: np.ndarray, config: RnnConfig, seed: int, epoch: int) -> list:
    """The batches of one epoch as (episode indices, starts, steps): random windows take
    their starts per batch (None here); from-start sequences group episodes of similar length
    (sorted by length plus a random jitter of up to ``LENGTH_STEP`` steps, the batches in a
    random order), each batch as long as its longest episode (capped at sequence_length)."""
    N, L, B = len(lengths), config.sequence_length, config.batch_size
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(N)
    if config.windows == "random":
        return [(np.sort(order[b * B:(b + 1) * B]), None, L) for b in range(-(-N // B))]
    capped = np.minimum(np.asarray(lengths), L)
    order = order[np.argsort(capped[order] + rng.uniform(0, LENGTH_STEP, N), kind="stable")]
    batches = []
    for b in rng.permutation(-(-N // B)):
        indices = np.sort(order[b * B:(b + 1) * B])
        steps = min(L, -(-int(capped[indices].max()) // LENGTH_STEP) * LENGTH_STEP)
        batches.append((indices, [0] * len(indices), steps))
    return batches


def train_rnn(model: MDNRNN, series: h5py.File, config: RnnConfig, seed: int,
              directory: Path, progress: bool = True) -> list[dict]:
    """Train M for ``config.epochs`` epochs of one random window per episode, resuming from
    the checkpoint in ``directory`` if there is one. Every epoch's order and every batch's
    windows and noise derive from (seed, epoch, batch), so a resumed run sees the same data.
    Windows are streamed from the series file by a reader thread, a few batches ahead.
    TensorBoard events: each loss term (mdn, reward, done and their total) per batch and per
    epoch."""
    optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.grad_clip)
    lengths = series["lengths"][()]
    loop = Loop("M", config.epochs, -(-len(lengths) // config.batch_size),
                config.checkpoint_every, bar_per_batch=False)

    def end_of_epoch(epoch, history, board):
        if (epoch + 1) % 5 == 0 or epoch + 1 == config.epochs:
            write_csv(directory / "metrics.csv", history)
            checkpoint.save_weights(model, directory / "rnn.weights.h5")

    return run_epochs(
        loop, directory, model, optimizer,
        lambda epoch, skip: prefetch(epoch_batches(series, lengths, config, seed, epoch, skip)),
        make_train_step(model, optimizer, config), end_of_epoch, progress)


def load_rnn(directory: Path, z_size: int, config: dict, action_size: int = 3) -> MDNRNN:
    model = MDNRNN(z_size, config["hidden_size"], config["mixtures"], config.get("dropout", 0.0),
                   action_size)
    checkpoint.load_weights(model, Path(directory) / "rnn.weights.h5", "train-rnn")
    return model
