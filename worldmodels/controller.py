"""C: the linear controller a = W [z, h] + b, squashed to CarRacing's action box.

Parameters travel as one flat vector (what CMA-ES searches): W row-major (input, 3), then b.
Batched versions take one parameter vector per agent so a whole population acts in one call.
"""

from __future__ import annotations

import numpy as np

from worldmodels.config import ACTION_SIZE


def param_count(input_size: int) -> int:
    """input * 3 weights + 3 biases (867 for z=32, h=256)."""
    return input_size * ACTION_SIZE + ACTION_SIZE


def unpack(flat: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat parameter vector -> (W of shape (input, 3), b of shape (3,))."""
    flat = np.asarray(flat)
    assert flat.shape == (param_count(input_size),), (
        f"expected {param_count(input_size)} parameters, got {flat.shape}"
    )
    split = input_size * ACTION_SIZE
    return flat[:split].reshape(input_size, ACTION_SIZE), flat[split:]


def pack(weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(W, b) -> flat vector; the inverse of ``unpack``."""
    return np.concatenate([np.ravel(weights), np.ravel(bias)])


def squash_numpy(raw: np.ndarray) -> np.ndarray:
    """steer = tanh, gas = (tanh + 1) / 2, brake = clip(tanh, 0, 1)."""
    t = np.tanh(raw)
    return np.stack([t[..., 0], (t[..., 1] + 1.0) / 2.0, np.clip(t[..., 2], 0.0, 1.0)], -1)


def act_numpy(flat: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Actions of one controller for features (..., input)."""
    weights, bias = unpack(flat, features.shape[-1])
    return squash_numpy(features @ weights + bias)


def act_batch(params, features):
    """TensorFlow: params (B, P), features (B, input) -> actions (B, 3), one controller per
    agent."""
    import tensorflow as tf

    input_size = features.shape[-1]
    split = input_size * ACTION_SIZE
    weights = tf.reshape(params[:, :split], (-1, input_size, ACTION_SIZE))
    raw = tf.einsum("bi,bio->bo", features, weights) + params[:, split:]
    t = tf.tanh(raw)
    return tf.stack([t[:, 0], (t[:, 1] + 1.0) / 2.0, tf.clip_by_value(t[:, 2], 0.0, 1.0)], -1)
