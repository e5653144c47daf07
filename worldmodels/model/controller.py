"""C: the controller, squashed into its env's action box (``EnvSpec.squash_*``: CarRacing's
steer, gas and brake; TakeCover's move). The three variants of the paper's CarRacing table,
and the inputs of its TakeCover controller:

- ``zh``: a = W [z, h] + b, the full world model (867 parameters for z=32, h=256).
- ``zhc``: a = W [z, h, c] + b, M's whole state: its hidden and its cell (as the paper's
  TakeCover controller, 1,088 weights for z=64, h=512).
- ``z``: a = W z + b, V only (99 parameters).
- ``z-hidden``: a = W2 tanh(W1 z + b1) + b2, V only with one hidden layer of 40 tanh units
  (1,443 parameters).

Parameters travel as one flat vector (what CMA-ES searches): each layer's W row-major
(input, output), then its b. Batched versions take one parameter vector per agent so a whole
population acts in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodels.config import CONTROLLER_VARIANTS
from worldmodels.envs import get_env
from worldmodels.envs.carracing import ENV_ID

ACTION_SIZE = 3  # CarRacing's, for the linear helpers below
MEMORY = {"zh": 1, "zhc": 2, "z": 0, "z-hidden": 0}  # how many of M's h and c C reads
HIDDEN_UNITS = 40


@dataclass(frozen=True)
class Controller:
    """The shape of a controller: which inputs it reads and its layers."""

    variant: str
    z_size: int
    hidden_size: int
    env_id: str = ENV_ID

    def __post_init__(self):
        if self.variant not in CONTROLLER_VARIANTS:
            raise ValueError(f"unknown controller variant {self.variant!r}; choose one of "
                             f"{', '.join(CONTROLLER_VARIANTS)}")

    @property
    def env(self):
        """The ``EnvSpec`` whose actions C outputs."""
        return get_env(self.env_id)

    @property
    def input_size(self) -> int:
        return self.z_size + MEMORY[self.variant] * self.hidden_size

    @property
    def layers(self) -> list[tuple[int, int]]:
        """(inputs, outputs) of each dense layer."""
        if self.variant == "z-hidden":
            return [(self.input_size, HIDDEN_UNITS), (HIDDEN_UNITS, self.env.action_size)]
        return [(self.input_size, self.env.action_size)]

    @property
    def param_count(self) -> int:
        return sum(i * o + o for i, o in self.layers)

    def describe(self) -> str:
        inputs = {"zh": "[z, h]", "zhc": "[z, h, c]"}.get(self.variant, "z")
        hidden = f", {HIDDEN_UNITS} tanh hidden units" if self.variant == "z-hidden" else ""
        return f"{self.variant} controller on {inputs}{hidden}, {self.param_count} parameters"

    def constant(self, raw) -> np.ndarray:
        """The parameters of the controller that outputs ``raw`` (before the squash) whatever
        it sees: every weight zero, the last layer's bias ``raw``."""
        flat = np.zeros(self.param_count, np.float32)
        flat[-self.env.action_size:] = raw
        return flat

    def features_numpy(self, z: np.ndarray, h: np.ndarray, c: np.ndarray | None = None):
        return np.concatenate([z, h, c][:1 + MEMORY[self.variant]], -1)

    def act_numpy(self, flat: np.ndarray, z: np.ndarray, h: np.ndarray,
                  c: np.ndarray | None = None) -> np.ndarray:
        """Actions of one controller for z (..., Z), h (..., H) and c (..., H; read by
        ``zhc`` only)."""
        x = self.features_numpy(z, h, c)
        for index, (weights, bias) in enumerate(unpack_layers(flat, self.layers)):
            x = x @ weights + bias
            if index < len(self.layers) - 1:
                x = np.tanh(x)
        return self.env.squash_numpy(x)

    def act_batch(self, params, z, h, c=None):
        """TensorFlow: params (B, P), z (B, Z), h (B, H), c (B, H; read by ``zhc`` only) ->
        actions (B, A), one controller per agent."""
        import tensorflow as tf

        x = tf.concat([z, h, c][:1 + MEMORY[self.variant]], axis=-1)
        offset = 0
        for index, (inputs, outputs) in enumerate(self.layers):
            weights = tf.reshape(params[:, offset:offset + inputs * outputs],
                                 (-1, inputs, outputs))
            offset += inputs * outputs
            # A batch of (1, in) @ (in, out) products: faster on CPU than einsum's path.
            x = tf.matmul(x[:, None, :], weights)[:, 0] + params[:, offset:offset + outputs]
            offset += outputs
            if index < len(self.layers) - 1:
                x = tf.tanh(x)
        return self.env.squash_tf(x)


def param_count(input_size: int) -> int:
    """Parameters of a linear controller: input * 3 weights + 3 biases (867 for z=32, h=256)."""
    return input_size * ACTION_SIZE + ACTION_SIZE


def unpack_layers(flat: np.ndarray, layers: list[tuple[int, int]]):
    """Flat parameter vector -> [(W, b), ...] for layers of (inputs, outputs)."""
    flat = np.asarray(flat)
    expected = sum(i * o + o for i, o in layers)
    assert flat.shape[-1:] == (expected,), f"expected {expected} parameters, got {flat.shape}"
    out, offset = [], 0
    for inputs, outputs in layers:
        weights = flat[offset:offset + inputs * outputs].reshape(inputs, outputs)
        offset += inputs * outputs
        out.append((weights, flat[offset:offset + outputs]))
        offset += outputs
    return out


def unpack(flat: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat linear-controller vector -> (W of shape (input, 3), b of shape (3,))."""
    return unpack_layers(flat, [(input_size, ACTION_SIZE)])[0]


def pack(weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(W, b) -> flat vector; the inverse of ``unpack``."""
    return np.concatenate([np.ravel(weights), np.ravel(bias)])


def squash_numpy(raw: np.ndarray) -> np.ndarray:
    """CarRacing's squash: steer = tanh, gas = (tanh + 1) / 2, brake = clip(tanh, 0, 1)."""
    return get_env(ENV_ID).squash_numpy(raw)


def act_numpy(flat: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Actions of one linear controller for features (..., input)."""
    weights, bias = unpack(flat, features.shape[-1])
    return squash_numpy(features @ weights + bias)


def act_batch(params, features):
    """TensorFlow: params (B, P), features (B, input) -> actions (B, 3), one linear controller
    per agent."""
    import tensorflow as tf

    input_size = int(features.shape[-1])
    spec = Controller("z", input_size, 0)
    return spec.act_batch(params, features, tf.zeros_like(features[:, :0]))
