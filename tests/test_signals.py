"""Stopping a command stops all of its work (issue 18): real stage processes signalled mid-run
leave no process of theirs alive, say in one line that they were stopped, and the same command
then finishes with the results of an uninterrupted run. A worker whose command is killed with
SIGKILL exits by itself."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import invoke
from tests.test_resume import CLI, _children, _wait_for
from worldmodels.core.artifacts import read_json
from worldmodels.data.collect import episode_seeds, run_episode
from worldmodels.data.store import check_episode, list_episodes, read_episode


def _start(*args, stderr=subprocess.STDOUT) -> subprocess.Popen:
    env = dict(os.environ, WORLDMODELS_NO_PROGRESS="1", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(CLI + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=stderr, text=True, env=env, start_new_session=True)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (workers and multiprocessing's resource tracker)."""
    found, parents = [], {pid}
    while parents:
        children = [c for p in parents for c in _child_pids(p)]
        found += children
        parents = set(children)
    return found


def _child_pids(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(c) for t in tasks for c in (t / "children").read_text().split()]
    except OSError:
        return []


def _alive(pids) -> list[int]:
    """The processes of ``pids`` still running (zombies count as ended)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            alive.append(pid)
    return alive


def _wait_gone(pids, timeout: float) -> float:
    """Seconds until every process of ``pids`` has ended; fails after ``timeout``."""
    started = time.time()
    while _alive(pids):
        if time.time() - started > timeout:
            pytest.fail(f"still alive {timeout} s after the signal: {_alive(pids)}")
        time.sleep(0.05)
    return time.time() - started


def _stop(process, signum=signal.SIGTERM) -> tuple[str, str | None]:
    """Send ``signum`` to the command alone; check its workers end within about a second and
    every process of the run within a few; return its stdout and stderr."""
    workers = _children(process.pid)
    assert workers, "no worker to stop"
    everything = [process.pid, *_descendants(process.pid)]
    process.send_signal(signum)
    assert _wait_gone(workers, timeout=2.0) < 2.0
    output = process.communicate(timeout=30)
    _wait_gone(everything, timeout=5.0)
    return output


def _assert_stopped_message(output: str, process, name: str = "SIGTERM") -> None:
    assert process.returncode == 1, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "stopped" in line]
    assert lines == [output.strip().splitlines()[-1]], output
    assert f"stopped by {name}" in lines[0] and "re-run the same command" in lines[0]


def test_a_stopped_collection_ends_its_workers_and_resumes(tmp_path):
    args = ["collect", "--preset", "smoke", "--name", "s", "--data-dir", tmp_path, "--seed", 3,
            "--episodes", 6, "--max-steps", 150, "--workers", 2]
    rollouts = tmp_path / "s" / "rollouts"
    process = _start(*args)
    _wait_for(lambda: len(list_episodes(rollouts)) >= 2 and len(_children(process.pid)) == 2,
              process)
    _assert_stopped_message(_stop(process)[0], process)
    before = {p.name: p.read_bytes() for p in list_episodes(rollouts)}
    assert 2 <= len(before) < 6
    assert all(check_episode(p) is None for p in list_episodes(rollouts))
    assert read_json(rollouts / "manifest.json")["status"] == "running"

    assert "resuming" in invoke(*args).output
    paths = list_episodes(rollouts)
    assert len(paths) == 6 and not list(rollouts.glob("*.tmp*"))
    for name, content in before.items():
        assert (rollouts / name).read_bytes() == content
    seeds = episode_seeds(3, 6)
    assert [int(read_episode(p)["attrs"]["seed"]) for p in paths] == seeds
    last = read_episode(paths[-1])  # an episode collected after the stop, as never stopped
    policy = str(last["attrs"]["policy"])
    np.testing.assert_array_equal(last["actions"],
                                  run_episode("CarRacing-v3", 150, policy, seeds[-1])["actions"])


def test_a_stopped_evaluation_ends_its_workers_quietly_and_resumes(smoke_run, tmp_path):
    root, _ = smoke_run
    results = tmp_path / "results"
    shutil.copytree(root / "results", results, ignore=shutil.ignore_patterns("evaluate"))
    args = ["evaluate", "--preset", "smoke", "--name", "smoke", "--data-dir", root / "data",
            "--results-dir", results, "--where", "real", "--episodes", 8, "--max-steps", 100,
            "--workers", 1]  # one worker: its first task (4 episodes) is kept, the second not
    evaluate = results / "smoke" / "evaluate"
    partial = evaluate / "real-dream-best.partial.json"
    process = _start(*args, stderr=subprocess.PIPE)
    _wait_for(lambda: partial.exists() and len(read_json(partial)["scores"]) >= 4, process)
    output, errors = _stop(process)
    _assert_stopped_message(output + errors, process)
    # Quiet workers: TensorFlow's start-up lines (absl format) come from the command alone.
    ids = {int(m.group(1)) for m in re.finditer(r"^[IWE]\d{4} [\d:.]+ +(\d+) ", errors, re.M)}
    assert ids <= {process.pid}, errors
    kept = read_json(partial)["scores"]
    assert len(kept) >= 4

    assert "±" in invoke(*args).output
    resumed = read_json(evaluate / "real-dream-best.json")["scores"]
    assert len(resumed) == 8 and not partial.exists()
    assert all(resumed[int(i)] == score for i, score in kept.items())
    invoke(*args, "--force")  # uninterrupted
    assert read_json(evaluate / "real-dream-best.json")["scores"] == resumed


def test_workers_of_a_command_killed_with_sigkill_exit_by_themselves(smoke_run, tmp_path):
    root, _ = smoke_run
    for name in ("a", "b"):
        shutil.copytree(root / "results" / "smoke", tmp_path / name / "smoke",
                        ignore=shutil.ignore_patterns("controller-*", "evaluate"))

    def args(name):
        return ["train-controller", "--preset", "smoke", "--name", "smoke", "--data-dir",
                root / "data", "--results-dir", tmp_path / name, "--where", "real",
                "--generations", 2, "--max-steps", 30, "--workers", 2]

    history = tmp_path / "b" / "smoke" / "controller-real" / "history.csv"
    process = _start(*args("b"))
    _wait_for(lambda: history.exists() and len(history.read_text().splitlines()) >= 2
              and len(_children(process.pid)) == 2, process)
    everything = [process.pid, *_descendants(process.pid)]
    os.kill(process.pid, signal.SIGKILL)  # the command alone: nobody ends its workers
    process.wait()
    _wait_gone(everything, timeout=5.0)
    assert len(history.read_text().splitlines()) - 1 < 2  # killed before the last generation

    assert "resuming" in invoke(*args("b")).output
    invoke(*args("a"))  # uninterrupted
    a, b = (tmp_path / n / "smoke" / "controller-real" for n in ("a", "b"))
    assert (a / "history.csv").read_text() == (b / "history.csv").read_text()
    np.testing.assert_array_equal(np.load(a / "best.npy"), np.load(b / "best.npy"))


_BACKEND_SCRIPT = """
import sys, time
from worldmodels.core.tasks import Stopped
from worldmodels.core.workers import LocalBackend

def nap(state, seconds):
    time.sleep(seconds)

if __name__ == "__main__":
    with LocalBackend(2) as backend:
        try:
            for _ in backend.run(nap, {0: 60, 1: 60}):
                pass
        except Stopped as error:
            print(error, flush=True)
            sys.exit(3)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
def test_sigint_and_sighup_stop_a_backend_and_its_workers(tmp_path, signum):
    script = tmp_path / "run.py"
    script.write_text(_BACKEND_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path.cwd()), *sys.path]))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    _wait_for(lambda: len(_children(process.pid)) == 2, process, timeout=60)
    time.sleep(1.0)  # the workers are in their task
    output, _ = _stop(process, signum)
    assert process.returncode == 3, output
    assert f"stopped by {signal.Signals(signum).name}" in output and "Traceback" not in output
