"""ViZDoom's TakeCover, the paper's dream experiment: the agent sees fireballs coming and
moves left or right to live; the env pays +1 for every step survived (the death step too), so
a return is an episode's length.

The game runs headless at 160x120 (about three times faster than 320x240), as a child
process that ``reaper`` removes with its shared-memory files if the process that made it is
killed. V sees the top 100 rows of the screen (the paper's crop, which drops the floor at the
bottom) resized to 64x64. C outputs one number; tanh of it below -1/3 moves left, above 1/3
right, anything between stands still: the action M reads and episode files store is that
move, -1, 0 or 1. The dream pays 1 a step and ends where M's done probability passes 0.5, as
the paper read it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from worldmodels.envs.base import EnvSpec, Policy
from worldmodels.errors import WorldModelsError

ENV_ID = "VizdoomTakeCover-v1"
FRAME_SIZE = 64
TOP_ROWS = 100  # of the 120: the paper kept the top 400 of 480
THRESHOLD = 1.0 / 3.0
LOW = np.array([-1.0], np.float32)
HIGH = np.array([1.0], np.float32)
_BUTTONS = {-1: [1, 0], 0: [0, 0], 1: [0, 1]}  # the scenario's buttons: MOVE_LEFT, MOVE_RIGHT
_reapers: dict[int, tuple[subprocess.Popen, str]] = {}


def start_reaper() -> str:
    """Start this process's watchdog of its game processes (once per process); returns the
    folder the games of this process work in, which the watchdog removes."""
    pid = os.getpid()
    if pid in _reapers and _reapers[pid][0].poll() is None:
        return _reapers[pid][1]
    folder = tempfile.mkdtemp(prefix=f"worldmodels-doom-{pid}-")
    script = Path(__file__).with_name("reaper.py")
    process = subprocess.Popen([sys.executable, str(script), str(pid), folder],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    _reapers[pid] = (process, folder)
    return folder


def move_of(action) -> int:
    """An action (a value in [-1, 1], as C's squash or a policy gives it) -> -1, 0 or 1."""
    value = float(np.asarray(action, np.float32).reshape(-1)[0])
    return -1 if value < -THRESHOLD else (1 if value > THRESHOLD else 0)


class TakeCoverEnv:
    """The game as a gymnasium-style env: ``reset(seed=...)`` -> (screen, info),
    ``step(action)`` -> (screen, reward, terminated, truncated, info), screens (120, 160, 3)
    uint8. ``reset`` with the same seed and the same actions give the same frames. The
    observation after the death step repeats the last screen (the game's own is black)."""

    def __init__(self, max_steps: int, render_mode: str | None = None):
        try:
            import vizdoom
        except ImportError:
            raise WorldModelsError("TakeCover needs ViZDoom: pip install 'vizdoom>=1.3' "
                                   "(or pip install -e '.[doom]')") from None
        self.max_steps, self.render_mode = max_steps, render_mode
        # The game writes _vizdoom.ini and a _vizdoom folder: into a folder of its own.
        self.folder = tempfile.mkdtemp(dir=start_reaper())
        game = vizdoom.DoomGame()
        game.load_config(os.path.join(vizdoom.scenarios_path, "take_cover.cfg"))
        game.set_screen_resolution(vizdoom.ScreenResolution.RES_160X120)
        game.set_screen_format(vizdoom.ScreenFormat.RGB24)
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_doom_config_path(os.path.join(self.folder, "_vizdoom.ini"))
        here = os.getcwd()
        os.chdir(self.folder)
        errors = (vizdoom.ViZDoomErrorException, vizdoom.ViZDoomUnexpectedExitException,
                  vizdoom.SharedMemoryException, vizdoom.MessageQueueException,
                  vizdoom.FileDoesNotExistException)
        try:
            game.init()
        except errors as error:  # the game's own failures; anything else is a bug of ours
            shutil.rmtree(self.folder, ignore_errors=True)
            raise WorldModelsError(f"ViZDoom could not start TakeCover: {error}") from None
        finally:
            os.chdir(here)
        self.game, self.steps, self.screen = game, 0, None

    def reset(self, seed: int | None = None, options=None):
        if seed is not None:
            self.game.set_seed(int(seed) % 2**32)
        self.game.new_episode()
        self.steps = 0
        self.screen = self.game.get_state().screen_buffer
        return self.screen, {}

    def step(self, action):
        reward = float(self.game.make_action(_BUTTONS[move_of(action)]))
        self.steps += 1
        terminated = self.game.is_episode_finished()
        if not terminated:
            self.screen = self.game.get_state().screen_buffer
        truncated = not terminated and self.steps >= self.max_steps
        return self.screen, reward, terminated, truncated, {}

    def render(self) -> np.ndarray:
        return self.screen

    def close(self) -> None:
        if self.game is not None:
            self.game.close()
            self.game = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __del__(self, _finalizing=sys.is_finalizing):
        try:
            self.close()
        except Exception:
            # At interpreter shutdown the game's module may be half torn down: the reaper
            # removes what is left. Any other time a failing close is a bug of ours: raised,
            # Python prints it ("Exception ignored in ...") instead of it passing unseen.
            if not _finalizing():
                raise


class RandomPolicy(Policy):
    """A uniformly random move at every step (survives about 220 steps)."""

    def act(self, observation):
        return np.array([self.rng.integers(-1, 2)], np.float32)


class RepeatPolicy(Policy):
    """The paper's data: a random move held for 1-10 frames, then another."""

    def __init__(self, rng):
        super().__init__(rng)
        self.left, self.move = 0, 0

    def act(self, observation):
        if self.left == 0:
            self.move = self.draw_move()
            self.left = int(self.rng.integers(1, 11))
        self.left -= 1
        return np.array([self.move], np.float32)

    def draw_move(self) -> int:
        """The next move to hold: -1, 0 or 1, equally likely."""
        return int(self.rng.integers(-1, 2))


class WanderPolicy(RepeatPolicy):
    """The paper's held moves, drawn with a leaning of the episode's own: the chances of left,
    stand and right come from a Dirichlet(0.4) draw at the episode's start, so some episodes
    roam the room as ``repeat`` does and others drift to a wall and stay pressed against it
    (where M of ``repeat`` data alone believes one survives: row T10 of
    results/EXPERIMENTS.md)."""

    def __init__(self, rng):
        super().__init__(rng)
        self.chances = rng.dirichlet([0.4, 0.4, 0.4])

    def draw_move(self) -> int:
        return int(self.rng.choice(3, p=self.chances)) - 1


class TakeCover(EnvSpec):
    """ViZDoom's TakeCover (scenario take_cover.wad, skill 4, +1 a step)."""

    id = ENV_ID
    action_size = 1
    action_labels = ("move",)
    low, high = LOW, HIGH
    policies = {"repeat": RepeatPolicy, "wander": WanderPolicy, "random": RandomPolicy}
    episode_cap = 2100
    step_reward = 1.0
    done_threshold = 0.5
    solved = 750.0
    max_return = 2100.0  # one a step survived, up to the cap
    gzip_level = 1  # half level 4's writing time for 6 % more bytes
    fixed_actions = {"always left": (-5.0,), "stand still": (0.0,), "always right": (5.0,)}

    def make(self, max_steps: int, render_mode: str | None = None):
        return TakeCoverEnv(max_steps, render_mode)

    def preprocess(self, observation) -> np.ndarray:
        return preprocess_frame(observation)

    def squash_numpy(self, raw: np.ndarray) -> np.ndarray:
        t = np.tanh(raw)
        return ((t > THRESHOLD).astype(np.float32) - (t < -THRESHOLD).astype(np.float32))

    def squash_tf(self, raw):
        import tensorflow as tf

        t = tf.tanh(raw)
        return tf.cast(t > THRESHOLD, tf.float32) - tf.cast(t < -THRESHOLD, tf.float32)


def preprocess_frame(screen: np.ndarray) -> np.ndarray:
    """(120, 160, 3) uint8 screen -> 64x64x3 uint8 frame of its top 100 rows."""
    assert screen.shape == (120, 160, 3), f"expected a 120x160x3 screen, got {screen.shape}"
    image = Image.fromarray(screen[:TOP_ROWS]).resize((FRAME_SIZE, FRAME_SIZE),
                                                       Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


SPEC = TakeCover()
