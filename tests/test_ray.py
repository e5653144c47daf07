"""The Ray backend on a private local Ray instance: the results of the local backend under the
same keys, shared state built once per Ray worker process, a task's own error reported and
not re-run, a killed worker's task re-run by Ray, one-line errors where Ray is missing or a
cluster cannot be reached; and the stages that take --ray-address give on Ray what they give
on local workers."""

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import common, invoke
from worldmodels.core.ray_backend import RayBackend  # imports Ray only when constructed
from worldmodels.core.workers import LocalBackend, TaskFailed, WorkerCrashes, make_backend
from worldmodels.data.collect import run_episode
from worldmodels.data.store import list_episodes, read_episode
from worldmodels.errors import WorldModelsError

ray = pytest.importorskip("ray")

# Ray workers import a pickled function's module by name, and a test module is importable
# there only when the tests run from the repository root; by value it works from anywhere.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _episode(state, args):
    seed, steps = args
    return run_episode("CarRacing-v3", steps, "pilot", seed)


class _PidState:
    """Shared state that tells which process built it and which build it is."""

    def __init__(self, key):
        self.key = key

    def build(self):
        return os.getpid(), os.urandom(8).hex()


def _pid_and_state(state, args):
    return os.getpid(), state


def _fail(state, marker):
    with open(marker, "a") as file:
        file.write("ran\n")
    raise WorldModelsError("no track for seed 7")


def _die_once(state, args):
    """Kill this worker process the first time the task runs (its marker is missing)."""
    marker, value = args
    if marker is not None and not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return value * 10


def _die(state, args):
    os.kill(os.getpid(), signal.SIGKILL)


def _interval(state, seconds):
    started = time.monotonic()  # one clock for every process of this machine
    time.sleep(seconds)
    return started, time.monotonic()


@pytest.fixture(scope="module")
def backend():
    with RayBackend("local", 2) as backend:
        yield backend
    assert not ray.is_initialized()


def test_ray_and_local_backends_give_the_same_episodes_under_the_same_keys(backend):
    # The first task is three times longer, so it finishes after tasks handed out later.
    tasks = {"c": (3, 60), "a": (1, 20), "d": (4, 20), "b": (2, 20)}
    on_ray = dict(backend.run(_episode, tasks))
    with LocalBackend(2) as local_backend:
        on_local = dict(local_backend.run(_episode, tasks))
    assert sorted(on_ray) == sorted(on_local) == ["a", "b", "c", "d"]
    for key, (_, steps) in tasks.items():
        assert len(on_ray[key]["actions"]) == steps
        for name in ("frames", "actions", "rewards", "terminations"):
            np.testing.assert_array_equal(on_ray[key][name], on_local[key][name])
        on_ray[key]["frames"][0] = 0  # results come back as writable arrays


def test_shared_state_is_built_once_per_worker_process_and_kept_across_runs(backend):
    first = dict(backend.run(_pid_and_state, dict.fromkeys(range(12)), shared=_PidState("v1")))
    second = dict(backend.run(_pid_and_state, dict.fromkeys(range(6)), shared=_PidState("v1")))
    builds = {}  # pid -> the states its tasks saw
    for pid, state in [*first.values(), *second.values()]:
        assert state[0] == pid, "state built in another process"
        builds.setdefault(pid, set()).add(state)
    assert all(len(states) == 1 for states in builds.values()), builds
    assert len(builds) <= 2 + 1  # two CPUs; a spare worker Ray may start
    third = dict(backend.run(_pid_and_state, dict.fromkeys(range(4)), shared=_PidState("v2")))
    assert not {state for _, state in third.values()} & set.union(*builds.values())


def test_an_error_in_a_task_stops_the_run_with_its_message_and_is_not_retried(
        backend, tmp_path):
    marker = tmp_path / "runs"
    with pytest.raises(TaskFailed, match="no track for seed 7"):
        list(backend.run(_fail, {0: str(marker)}))
    assert marker.read_text() == "ran\n"
    assert dict(backend.run(_die_once, {0: (None, 1)})) == {0: 10}


def test_a_killed_worker_task_is_retried_with_no_result_lost_or_repeated(backend, tmp_path):
    dies = {1, 4}
    tasks = {k: (str(tmp_path / f"{k}") if k in dies else None, k) for k in range(6)}
    crashes = []
    results = list(backend.run(_die_once, tasks, max_crashes=2,
                               on_crash=lambda worker, key: crashes.append((worker, key))))
    assert sorted(results) == [(k, 10 * k) for k in range(6)]
    assert sorted(crashes) == [(None, 1), (None, 4)]


def test_a_task_whose_worker_always_dies_ends_the_run_with_worker_crashes(backend):
    with pytest.raises(WorkerCrashes) as error:
        list(backend.run(_die, {0: None}, max_crashes=1))
    assert error.value.crashes == 2
    assert dict(backend.run(_die_once, {0: (None, 2)})) == {0: 20}


def test_a_running_ray_session_is_joined_and_left_running(backend):
    for address in ("local", "auto"):
        with make_backend(None, address) as joined:
            assert joined.name == "ray" and joined.workers == 2
    assert ray.is_initialized()
    with make_backend(5, "local") as joined:
        assert joined.workers == 5
    assert dict(backend.run(_die_once, {0: (None, 3)})) == {0: 30}


def test_a_cluster_with_more_cpus_than_workers_runs_that_many_tasks_at_once(backend):
    with make_backend(1, "auto") as joined:  # one worker on the instance's two CPUs
        intervals = sorted(dict(joined.run(_interval, dict.fromkeys(range(3), 0.3))).values())
    assert all(end <= start for (_, end), (start, _) in zip(intervals, intervals[1:]))


def test_an_unreachable_cluster_is_one_line_error():
    with pytest.raises(WorldModelsError, match=r"^cannot reach a Ray cluster at 127\.0\.0\.1:1: "
                                               r"[^\n]+$"):
        RayBackend("127.0.0.1:1", 1)


def test_without_ray_the_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(WorldModelsError, match=r"^[^\n]*pip install 'worldmodels\[ray\]'$"):
        make_backend(2, "local")


# ---------------------------------------------------------------------------------------------
# the stages with --ray-address (joining the module's Ray instance, as `local` does when this
# process already has one) against the same stages on local worker processes


@pytest.fixture
def ray_runs(backend, monkeypatch):
    """The task functions the stages ran on Ray (the real runs, only recorded)."""
    runs = []
    run = RayBackend.run

    def recorded(self, fn, tasks, *args, **kwargs):
        runs.append(fn.__name__)
        yield from run(self, fn, tasks, *args, **kwargs)

    monkeypatch.setattr(RayBackend, "run", recorded)
    return runs


def test_collect_on_ray_writes_the_episodes_of_the_local_backend(ray_runs, tmp_path):
    args = ("--episodes", "3", "--max-steps", "25")
    invoke("collect", *common(tmp_path / "local"), *args)
    invoke("collect", *common(tmp_path / "ray"), *args, "--ray-address", "local")
    assert ray_runs == ["collect_task"]
    local, on_ray = (list_episodes(tmp_path / where / "data/smoke/rollouts")
                     for where in ("local", "ray"))
    assert [p.name for p in local] == [p.name for p in on_ray] and len(local) == 3
    for x, y in zip(map(read_episode, local), map(read_episode, on_ray)):
        for name in ("frames", "actions", "rewards", "terminations"):
            np.testing.assert_array_equal(x[name], y[name])
        assert x["attrs"]["seed"] == y["attrs"]["seed"]


def test_takecover_collect_on_ray_writes_the_episodes_of_the_local_backend(ray_runs, tmp_path):
    args = ("--preset", "doom-smoke", "--episodes", "2", "--max-steps", "30")
    invoke("collect", *common(tmp_path / "local"), *args)
    invoke("collect", *common(tmp_path / "ray"), *args, "--ray-address", "local")
    assert ray_runs == ["collect_task"]
    local, on_ray = (list_episodes(tmp_path / where / "data/smoke/rollouts")
                     for where in ("local", "ray"))
    assert [p.name for p in local] == [p.name for p in on_ray] and len(local) == 2
    for x, y in zip(map(read_episode, local), map(read_episode, on_ray)):
        assert x["actions"].shape[1] == 1  # TakeCover's one move
        for name in ("frames", "actions", "rewards", "terminations"):
            np.testing.assert_array_equal(x[name], y[name])


def _results_copy(smoke_run, tmp_path, name):
    root, _ = smoke_run
    shutil.copytree(root / "results" / "smoke", tmp_path / name / "smoke")
    return ["--preset", "smoke", "--name", "smoke", "--data-dir", root / "data",
            "--results-dir", tmp_path / name, "--seed", 0]


def test_evaluate_real_on_ray_scores_what_local_workers_score(smoke_run, ray_runs, tmp_path):
    args = _results_copy(smoke_run, tmp_path, "ray")
    local = json.loads((smoke_run[0] / "results/smoke/evaluate/real-dream-best.json")
                       .read_text())  # written by the fixture on local workers
    invoke("evaluate", *args, "--where", "real", "--ray-address", "local", "--force")
    assert ray_runs == ["run_agent_episodes"]
    on_ray = json.loads((tmp_path / "ray/smoke/evaluate/real-dream-best.json").read_text())
    assert (on_ray["config"], on_ray["seed"]) == (local["config"], local["seed"])
    assert on_ray["scores"] == local["scores"] and on_ray["seeds"] == local["seeds"]


def test_train_controller_real_on_ray_evolves_what_local_workers_evolve(
        smoke_run, ray_runs, tmp_path):
    small = ("--where", "real", "--population", "3", "--trials", "1", "--generations", "2",
             "--max-steps", "20", "--force")
    invoke("train-controller", *_results_copy(smoke_run, tmp_path, "local"), *small)
    invoke("train-controller", *_results_copy(smoke_run, tmp_path, "ray"), *small,
           "--ray-address", "local")
    assert ray_runs == ["run_agent_episodes"] * 2  # one run per generation
    local, on_ray = (tmp_path / where / "smoke/controller-real" for where in ("local", "ray"))
    history = (local / "history.csv").read_text()
    assert len(history.splitlines()) == 3 and (on_ray / "history.csv").read_text() == history
    for name in ("best.npy", "mean.npy"):
        np.testing.assert_array_equal(np.load(on_ray / name), np.load(local / name))
