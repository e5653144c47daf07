"""The same seed gives the same rollouts; another seed gives other tracks."""

import numpy as np

from tests.conftest import invoke
from worldmodels.data.store import list_episodes, read_episode


def _collect(root, seed):
    invoke("collect", "--preset", "smoke", "--name", "d", "--data-dir", root, "--seed", seed,
           "--episodes", "2", "--max-steps", "25")
    return [read_episode(p) for p in list_episodes(root / "d" / "rollouts")]


def _bytes(root):
    return [p.read_bytes() for p in list_episodes(root / "d" / "rollouts")]


def test_same_seed_same_rollouts_other_seed_other_tracks(tmp_path):
    first = _collect(tmp_path / "a", 5)
    second = _collect(tmp_path / "b", 5)
    other = _collect(tmp_path / "c", 6)
    for x, y in zip(first, second):
        for key in ("frames", "actions", "rewards", "terminations"):
            np.testing.assert_array_equal(x[key], y[key])
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")  # byte for byte
    assert not np.array_equal(first[0]["frames"], other[0]["frames"])
    assert first[0]["attrs"]["seed"] != other[0]["attrs"]["seed"]
