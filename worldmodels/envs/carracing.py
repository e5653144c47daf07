"""CarRacing-v3: frames without the indicator bar, the (steer, gas, brake) box, and the
exploration policies.

Frames are cropped of the 12-pixel indicator bar at the bottom (96x96 -> 84x96) and resized to
64x64 with an antialiasing filter, stored as uint8.

Uniform random actions barely move the car, and blind Brownian actions drive it onto the grass
(returns of -30 to -80 on CarRacing-v3), so the default policy is ``pilot``: a noisy road
follower that steers towards the grey road pixels ahead of the car, with Brownian steering noise
whose size is drawn per episode, so the data holds both good driving and mistakes (returns
about 500-850 with little noise, lower with more). The pilot never brakes and keeps its gas
below 0.3, so an M trained on its data cannot know what braking or full throttle do, and a
controller evolved in that M's dream brakes freely (it costs nothing there). ``rally`` is the
pilot with the whole action box exercised: a Brownian throttle around a per-episode target,
bursts of braking (with and without gas), and per-step jitter; ``recover`` is the rally driver
leaving the road on purpose and finding it again. All policies are seeded per episode.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from worldmodels.envs.base import EnvSpec, Policy

ENV_ID = "CarRacing-v3"
FRAME_SIZE = 64
INDICATOR_ROWS = 12
LOW = np.array([-1.0, 0.0, 0.0], dtype=np.float32)
HIGH = np.array([1.0, 1.0, 1.0], dtype=np.float32)
BROWNIAN_SCALE = np.sqrt(1.0 / 50.0)


class RandomPolicy(Policy):
    """Uniform random actions."""

    def act(self, observation):
        return self.rng.uniform(LOW, HIGH).astype(np.float32)


class BrownianPolicy(Policy):
    """a_{t+1} = clip(a_t + sqrt(1/50) * noise)."""

    def __init__(self, rng, start=None):
        super().__init__(rng)
        self.action = rng.uniform(LOW, HIGH) if start is None else np.asarray(start, float)

    def act(self, observation):
        action = self.action.astype(np.float32)
        noise = BROWNIAN_SCALE * self.rng.standard_normal(len(LOW))
        self.action = np.clip(self.action + noise, LOW, HIGH)
        return action


class BiasedPolicy(BrownianPolicy):
    """Brownian steering, gas held within [0.3, 0.8], a light brake one step in ten."""

    def __init__(self, rng):
        super().__init__(rng, start=[0.0, 0.6, 0.0])

    def act(self, observation):
        action = super().act(observation)
        action[1] = 0.3 + 0.5 * action[1]
        action[2] = 0.3 * action[2] if self.rng.random() < 0.1 else 0.0
        return action


class PilotPolicy(Policy):
    """Steer towards the road pixels in a band ahead of the car, plus Brownian noise."""

    def __init__(self, rng):
        super().__init__(rng)
        self.noise_limit = rng.uniform(0.2, 0.9)
        self.gas = rng.uniform(0.1, 0.3)
        self.noise = 0.0

    def act(self, observation):
        band = observation[40:62].astype(np.int16)
        red, green = band[..., 0], band[..., 1]
        road = (np.abs(red - green) < 15) & (green > 80) & (green < 130)
        columns = np.nonzero(road)[1]
        target = (columns.mean() - 48.0) / 48.0 if columns.size > 10 else 0.0
        step = 2 * BROWNIAN_SCALE * self.rng.standard_normal()
        self.noise = float(np.clip(self.noise + step, -self.noise_limit, self.noise_limit))
        steer = float(np.clip(2.0 * target + self.noise, -1.0, 1.0))
        gas = self.gas if abs(steer) < 0.4 else 0.02
        return np.array([steer, gas, 0.0], dtype=np.float32)


class RallyPolicy(PilotPolicy):
    """The pilot's steering with varied speed: the throttle wanders (Brownian) around a target
    drawn per episode in [0.1, 0.9], slowing for bends on careful episodes; bursts of 5-20 steps
    of braking at a random strength start with probability 1/80 per step, half of them with
    the gas still pressed; gas and brake get small per-step jitter."""

    def __init__(self, rng):
        super().__init__(rng)
        self.target = rng.uniform(0.1, 0.9)
        self.careful = rng.random() < 0.5
        self.throttle = self.target
        self.brake_left, self.brake, self.brake_gas = 0, 0.0, 0.0

    def act(self, observation):
        action = super().act(observation)
        rng = self.rng
        self.throttle += 0.1 * (self.target - self.throttle) + 0.1 * rng.standard_normal()
        self.throttle = float(np.clip(self.throttle, 0.0, 1.0))
        gas = self.throttle * (0.3 if self.careful and abs(action[0]) > 0.4 else 1.0)
        brake = 0.0
        if self.brake_left == 0 and rng.random() < 1 / 80:
            self.brake_left = int(rng.integers(5, 21))
            self.brake = rng.uniform(0.1, 1.0)
            self.brake_gas = rng.uniform(0.0, 1.0) if rng.random() < 0.5 else 0.0
        if self.brake_left > 0:
            self.brake_left -= 1
            gas, brake = self.brake_gas, self.brake
        jitter = 0.05 * rng.standard_normal(2)
        action[1] = np.clip(gas + jitter[0], 0.0, 1.0)
        action[2] = np.clip(brake + jitter[1], 0.0, 1.0) if brake > 0 else max(0.0, jitter[1])
        return action


class RecoverPolicy(RallyPolicy):
    """The rally driver, leaving the road on purpose and finding it again: after the zoom-in
    (step 50), an excursion starts with probability 1/200 per step: 10-40 steps of hard
    steering to one side (0.6-1.0) with gas 0.3-1.0, which takes the car onto the grass and
    often spins it; then it turns towards the road pixels in view (on the spot while none
    are) until the car is back on the road (at most 200 steps) and the rally driver takes
    over. M learns from it what leaving the road
    costs (no tiles, the -100 of leaving the playfield) and what recovering looks like:
    things a careful driver's data hardly hold."""

    def __init__(self, rng):
        super().__init__(rng)
        self.step, self.away, self.back, self.side = 0, 0, 0, 0.0
        self.steer, self.push = 0.0, 0.0

    def act(self, observation):
        action = super().act(observation)  # the rally driver's draws, every step
        self.step += 1
        rng = self.rng
        if self.away == 0 and self.back == 0 and self.step > 50 and rng.random() < 1 / 200:
            self.away = int(rng.integers(10, 41))
            self.side = 1.0 if rng.random() < 0.5 else -1.0
            self.steer, self.push = rng.uniform(0.6, 1.0), rng.uniform(0.3, 1.0)
        if self.away > 0:
            self.away -= 1
            self.back = 200 if self.away == 0 else 0
            return np.array([self.side * self.steer, self.push, 0.0], dtype=np.float32)
        if self.back > 0:
            under = _road(observation[66:77, 44:52]).mean()  # the car's own pixels
            self.back = 0 if under > 0.5 else self.back - 1
            if self.back:
                return self._towards_road(observation)
        return action

    def _towards_road(self, observation) -> np.ndarray:
        """Slowly towards the road pixels in view; turning on the spot, away from the side
        the excursion went, while none are."""
        columns = np.nonzero(_road(observation[:84]))[1]
        if columns.size > 10:
            steer = float(np.clip(2.0 * (columns.mean() - 48.0) / 48.0, -1.0, 1.0))
        else:
            steer = -self.side
        return np.array([steer, 0.2, 0.0], dtype=np.float32)


def _road(pixels) -> np.ndarray:
    """Where ``pixels`` (rows of a frame) show road: the pilot's grey test."""
    pixels = pixels.astype(np.int16)
    red, green = pixels[..., 0], pixels[..., 1]
    return (np.abs(red - green) < 15) & (green > 80) & (green < 130)


class CarRacing(EnvSpec):
    """Gymnasium's CarRacing-v3, state pixels rendered headless."""

    id = ENV_ID
    action_size = 3
    action_labels = ("steer", "gas", "brake")
    low, high = LOW, HIGH
    fixed_actions = {"no gas": (0.0, -5.0, -5.0), "straight, full gas": (0.0, 5.0, -5.0),
                     "hard left, full gas": (-5.0, 5.0, -5.0),
                     "hard right, full gas": (5.0, 5.0, -5.0)}
    policies = {"pilot": PilotPolicy, "rally": RallyPolicy, "recover": RecoverPolicy,
                "biased": BiasedPolicy, "brownian": BrownianPolicy, "random": RandomPolicy}
    episode_cap = 1000
    solved = 900.0
    max_return = 930.0  # every tile (1,000) less 0.1 a step over the fastest possible lap

    def make(self, max_steps: int, render_mode: str | None = None):
        import gymnasium as gym

        return gym.make(ENV_ID, max_episode_steps=max_steps, render_mode=render_mode)

    def preprocess(self, observation) -> np.ndarray:
        return preprocess_frame(observation)

    def squash_numpy(self, raw: np.ndarray) -> np.ndarray:
        """steer = tanh, gas = (tanh + 1) / 2, brake = clip(tanh, 0, 1)."""
        t = np.tanh(raw)
        return np.stack([t[..., 0], (t[..., 1] + 1.0) / 2.0, np.clip(t[..., 2], 0.0, 1.0)], -1)

    def squash_tf(self, raw):
        import tensorflow as tf

        t = tf.tanh(raw)
        return tf.stack([t[:, 0], (t[:, 1] + 1.0) / 2.0, tf.clip_by_value(t[:, 2], 0.0, 1.0)],
                        -1)


def preprocess_frame(observation: np.ndarray) -> np.ndarray:
    """96x96x3 uint8 observation -> 64x64x3 uint8 frame without the indicator bar."""
    assert observation.shape == (96, 96, 3), f"expected a 96x96x3 frame, got {observation.shape}"
    cropped = observation[: 96 - INDICATOR_ROWS]
    image = Image.fromarray(cropped).resize((FRAME_SIZE, FRAME_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


# What a CarRacing-v3 track pays: -0.1 a frame, and 1,000 in all for its tiles (1,000 / N for
# each of its N tiles); the episode terminates when the last tile is reached.
FRAME_COST = 0.1
TRACK_TOTAL = 1000.0


def pay_as_track(reward, paid, tile_value: float):
    """The env's bookkeeping applied to M's predicted ``reward`` of one step, given the tile
    reward ``paid`` so far: the step's tile gain is read as at most one tile (``tile_value``)
    and what would take the total past 1,000 is not paid; losses (leaving the playfield) are
    kept. Returns (reward, paid'). Works on NumPy arrays and tensors alike."""
    above = reward + FRAME_COST
    gain = _minimum(_clip(above, 0.0, tile_value), TRACK_TOTAL - paid)
    return -FRAME_COST + gain + _minimum(above, 0.0), paid + gain


def _clip(x, low, high):
    if _is_tensor(x):
        import tensorflow as tf

        return tf.clip_by_value(x, low, high)
    return np.clip(x, low, high)


def _minimum(x, y):
    if _is_tensor(x):
        import tensorflow as tf

        return tf.minimum(x, y)
    return np.minimum(x, y)


def _is_tensor(x) -> bool:
    """A TensorFlow tensor, told without importing TensorFlow (this module must not)."""
    return type(x).__module__.startswith("tensorflow")


# 1,000 / the tile count of a typical CarRacing-v3 track (about 300 tiles): used only when no
# collected step reached a new tile.
TYPICAL_TILE_VALUE = 1000.0 / 300


def tile_value(rewards, lengths) -> float:
    """What one new tile pays on the collected tracks, 1,000 / N (N the track's tile count):
    in each episode, the smallest step reward above -0.1 is one tile less the frame's 0.1;
    the median over episodes. Rows of ``rewards`` are read one at a time (streamed)."""
    per_episode = []
    for row, length in enumerate(lengths):
        gains = np.asarray(rewards[row, : int(length)], np.float64) + 0.1
        gains = gains[gains > 1e-3]
        if len(gains):
            per_episode.append(gains.min())
    return float(np.median(per_episode)) if per_episode else TYPICAL_TILE_VALUE


SPEC = CarRacing()
POLICIES = tuple(SPEC.policies)
