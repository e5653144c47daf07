"""The local backend: worker processes that run tasks keyed by key, and what they report."""

import numpy as np
import pytest

from tests.conftest import common, invoke
from worldmodels.config import CollectConfig
from worldmodels.core.tasks import WorkerBug
from worldmodels.core.workers import LocalBackend, TaskFailed, make_backend
from worldmodels.data.collect import collect_task, run_episode
from worldmodels.envs.shared import EnvSetup, replay_episodes
from worldmodels.errors import WorldModelsError


def test_tasks_come_back_under_their_keys_with_the_results_of_a_plain_run():
    config = CollectConfig(episodes=3, max_steps=15, workers=2)
    seeds = {"a": 11, "b": 12, "c": 13}
    with LocalBackend(2) as backend:
        results = dict(backend.run(collect_task, {k: (None, i, s, config)
                                                   for i, (k, s) in enumerate(seeds.items())}))
    assert sorted(results) == ["a", "b", "c"]
    for key, seed in seeds.items():
        total, length, episode = results[key]
        expected = run_episode(config.env_id, config.max_steps, config.policy, seed)
        for name in ("frames", "actions", "rewards"):
            np.testing.assert_array_equal(episode[name], expected[name])
        assert length == 15 and total == pytest.approx(float(expected["rewards"].sum()))


def test_replay_steps_every_recorded_action_on_workers_that_keep_their_envs():
    envs = EnvSetup("CarRacing-v3", 30, envs=2)
    tasks = {0: [(5, np.zeros((12, 3), np.float32)), (6, np.ones((7, 3), np.float32))],
             1: [(7, np.zeros((3, 3), np.float32))]}
    with LocalBackend(2) as backend:
        assert dict(backend.run(replay_episodes, tasks, shared=envs)) == {0: 19, 1: 3}
        assert dict(backend.run(replay_episodes, {2: tasks[1]}, shared=envs)) == {2: 3}


def test_an_error_in_a_task_stops_the_run_with_its_message():
    config = CollectConfig(episodes=1, max_steps=5, policy="no-such-policy")
    with LocalBackend(1) as backend:
        with pytest.raises(TaskFailed, match="unknown policy 'no-such-policy'"):
            list(backend.run(collect_task, {0: (None, 0, 1, config)}))
        # The worker survives its task's error and serves the next run.
        assert dict(backend.run(replay_episodes, {0: [(5, np.zeros((2, 3)))]},
                                shared=EnvSetup("CarRacing-v3", 5))) == {0: 2}


def test_the_local_backend_refuses_zero_workers():
    with pytest.raises(WorldModelsError, match="workers must be >= 1"):
        make_backend(0)


def test_a_bug_in_a_task_reaches_the_user_as_the_workers_traceback_not_a_user_error():
    # A config of None is a bug in the caller, not the user's input: an AttributeError.
    with LocalBackend(1) as backend:
        with pytest.raises(WorkerBug) as raised:
            list(backend.run(collect_task, {0: (None, 0, 1, None)}))
    assert not isinstance(raised.value, WorldModelsError)
    message = str(raised.value)
    assert "Traceback (most recent call last)" in message and "AttributeError" in message
    assert "damaged" not in message and "--force" not in message


def test_worldmodels_debug_keeps_the_traceback_of_a_user_error(tmp_path, monkeypatch):
    args = ["evaluate", *common(tmp_path, name="nothing-here")]
    result = invoke(*args, expect_ok=False)
    assert result.exit_code != 0 and "Traceback" not in result.output
    monkeypatch.setenv("WORLDMODELS_DEBUG", "1")
    with pytest.raises(WorldModelsError):
        invoke(*args, expect_ok=False)


def test_the_debug_flag_keeps_the_traceback_of_a_user_error(tmp_path):
    import subprocess
    import sys

    args = [sys.executable, "-m", "worldmodels_cli"]
    tail = ["evaluate", *map(str, common(tmp_path, name="nothing-here"))]
    plain = subprocess.run(args + tail, capture_output=True, text=True, timeout=300)
    debug = subprocess.run(args + ["--debug"] + tail, capture_output=True, text=True,
                           timeout=300)
    assert plain.returncode != 0 and "Traceback" not in plain.stderr
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert "WorldModelsError" in debug.stderr


def test_a_mixture_of_policies_gives_the_episodes_to_its_members_in_turn(tmp_path):
    from worldmodels.data.collect import episode_seeds
    from worldmodels.data.store import list_episodes, read_episode

    invoke("collect", *common(tmp_path), "--policy", "pilot+recover", "--episodes", 3,
           "--max-steps", 12, "--workers", 1)
    episodes = [read_episode(path) for path in list_episodes(tmp_path / "data" / "smoke" /
                                                             "rollouts")]
    assert [str(e["attrs"]["policy"]) for e in episodes] == ["pilot", "recover", "pilot"]
    seeds = episode_seeds(0, 3)
    recover = run_episode("CarRacing-v3", 12, "recover", seeds[1])
    np.testing.assert_array_equal(episodes[1]["actions"], recover["actions"])
    refused = invoke("collect", *common(tmp_path), "--policy", "pilot+nope", expect_ok=False)
    assert refused.exit_code != 0 and "'nope' is not one of" in refused.output
