import numpy as np
import pytest

from worldmodels.data.collect import episode_seeds, run_episode
from worldmodels.envs.carracing import POLICIES, SPEC
from worldmodels.envs.shared import make_env, preprocess_frame
from worldmodels.errors import WorldModelsError

make_policy = SPEC.make_policy


def test_preprocess_crops_the_indicator_bar_and_resizes():
    rng = np.random.default_rng(0)
    observation = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    frame = preprocess_frame(observation)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8
    changed = observation.copy()
    changed[84:] = 255 - changed[84:]
    np.testing.assert_array_equal(preprocess_frame(changed), frame)


def test_preprocess_is_antialiased():
    # A one-pixel checkerboard averages to grey under an antialiasing filter; naive
    # subsampling would keep pure black and white pixels.
    board = (np.indices((96, 96)).sum(0) % 2 * 255).astype(np.uint8)
    frame = preprocess_frame(np.repeat(board[..., None], 3, axis=2))
    assert 100 < frame.mean() < 155 and frame.std() < 40


def test_preprocess_rejects_wrong_shapes():
    with pytest.raises(AssertionError, match="96x96x3"):
        preprocess_frame(np.zeros((64, 64, 3), np.uint8))


def test_unknown_env_is_a_clear_error():
    with pytest.raises(WorldModelsError, match="unknown env"):
        make_env("NoSuchEnv-v0", 10)


def test_policies_stay_in_the_action_box():
    observation = np.full((96, 96, 3), 105, np.uint8)
    for name in POLICIES:
        policy = make_policy(name, np.random.default_rng(1))
        actions = np.array([policy.act(observation) for _ in range(200)])
        assert actions.shape == (200, 3)
        assert (actions[:, 0] >= -1).all() and (actions[:, 0] <= 1).all()
        assert (actions[:, 1:] >= 0).all() and (actions[:, 1:] <= 1).all()


def test_pilot_drives_further_than_random_actions():
    seed = episode_seeds(0, 1)[0]
    pilot = run_episode("CarRacing-v3", 250, "pilot", seed)["rewards"].sum()
    uniform = run_episode("CarRacing-v3", 250, "random", seed)["rewards"].sum()
    assert pilot > 20 and pilot > uniform + 10, (pilot, uniform)


def test_episode_arrays_line_up():
    episode = run_episode("CarRacing-v3", 30, "biased", 3)
    T = len(episode["actions"])
    assert T == 30
    assert episode["frames"].shape == (T + 1, 64, 64, 3)
    assert episode["rewards"].shape == episode["terminations"].shape == (T,)


def test_the_recover_policy_leaves_the_road_and_finds_it_again():
    import gymnasium as gym

    from worldmodels.envs.carracing import RecoverPolicy

    env = gym.make("CarRacing-v3")
    observation, _ = env.reset(seed=3)
    policy = RecoverPolicy(np.random.default_rng(3))
    trace = []  # (phase, all four wheels off the road) each step
    for _ in range(700):
        observation, *_ = env.step(policy.act(observation))
        phase = "away" if policy.away else ("back" if policy.back else "drive")
        trace.append((phase, all(not w.tiles for w in env.unwrapped.car.wheels)))
    env.close()
    first_away = next(t for t, (phase, _) in enumerate(trace) if phase == "away")
    assert first_away > 50  # not during the zoom-in
    left = [t for t, (phase, off) in enumerate(trace) if phase == "away" and off]
    assert left, "an excursion takes the car off the road"
    back_on = [t for t, (phase, off) in enumerate(trace) if t > left[0] and not off]
    assert back_on, "and it finds the road again"
