"""Runs that survive: stage processes killed mid-run (SIGKILL) and resumed, crashed workers,
non-finite losses, re-runs of complete stages."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, common, copy_smoke, invoke
from worldmodels.core.artifacts import read_json
from worldmodels.data.collect import episode_seeds
from worldmodels.data.store import check_episode, list_episodes, read_episode

CLI = [sys.executable, "-c", "from tests.conftest import cli_main; cli_main()()"]


def _start(*args) -> subprocess.Popen:
    env = dict(os.environ, WORLDMODELS_NO_PROGRESS="1", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(CLI + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def _wait_for(condition, process, timeout=240.0):
    """Poll until ``condition()`` holds; fails if the process ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"process ended before the kill point:\n{process.stdout.read()}")
        time.sleep(0.05)
    pytest.fail("timed out waiting for the kill point")


def _kill(process):
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _children(pid: int) -> list[int]:
    """Worker processes of ``pid`` (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid and "spawn_main" in command and "resource_tracker" not in command:
            found.append(int(entry.name))
    return found


def test_collection_killed_mid_run_loses_nothing_and_duplicates_nothing(tmp_path):
    args = ["collect", "--preset", "smoke", "--name", "k", "--data-dir", tmp_path, "--seed", 3,
            "--episodes", 6, "--max-steps", 150, "--workers", 2]
    rollouts = tmp_path / "k" / "rollouts"
    process = _start(*args)
    _wait_for(lambda: len(list_episodes(rollouts)) >= 2, process)
    _kill(process)
    before = {p.name: p.read_bytes() for p in list_episodes(rollouts)}
    assert 2 <= len(before) < 6
    assert all(check_episode(p) is None for p in list_episodes(rollouts))
    assert read_json(rollouts / "manifest.json")["status"] == "running"

    output = invoke(*args).output
    assert "resuming" in output
    paths = list_episodes(rollouts)
    assert len(paths) == 6 and not list(rollouts.glob("*.tmp*"))
    for name, content in before.items():  # finished episodes were kept, not redone
        assert (rollouts / name).read_bytes() == content
    seeds = [int(read_episode(p)["attrs"]["seed"]) for p in paths]
    assert seeds == episode_seeds(3, 6)
    assert read_json(rollouts / "manifest.json")["status"] == "complete"


def test_a_killed_collection_worker_is_replaced(tmp_path):
    process = _start("collect", "--preset", "smoke", "--name", "w", "--data-dir", tmp_path,
                     "--episodes", 6, "--max-steps", 150, "--workers", 2)
    _wait_for(lambda: len(_children(process.pid)) == 2, process)
    time.sleep(1.0)
    os.kill(_children(process.pid)[0], signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert "a worker crashed" in output
    paths = list_episodes(tmp_path / "w" / "rollouts")
    seeds = [int(read_episode(p)["attrs"]["seed"]) for p in paths]
    assert len(paths) == 6 and seeds == episode_seeds(0, 6)


def test_a_killed_env_worker_during_evaluation_is_replaced(smoke_run, tmp_path):
    root, _ = smoke_run
    results = tmp_path / "results"
    shutil.copytree(root / "results", results)
    args = ["evaluate", "--preset", "smoke", "--name", "smoke", "--data-dir", root / "data",
            "--results-dir", results, "--episodes", 6, "--max-steps", 200, "--workers", 2,
            "--force"]
    process = _start(*args)
    _wait_for(lambda: len(_children(process.pid)) == 2, process)
    time.sleep(6.0)
    os.kill(_children(process.pid)[0], signal.SIGKILL)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert "crashed; redoing episode" in output
    result = read_json(results / "smoke" / "evaluate" / "real-dream-best.json")
    assert len(result["scores"]) == 6
    # Each episode's noise comes from its own seed: the redone episode scores as if never
    # interrupted, so the whole result equals an uninterrupted run.
    clean = invoke(*args).output
    assert "±" in clean
    assert read_json(results / "smoke" / "evaluate" / "real-dream-best.json")["scores"] == \
        result["scores"]


def test_vae_training_killed_mid_run_resumes_from_its_checkpoint(smoke_run, tmp_path):
    root, _ = smoke_run
    args = ["train-vae", *common(root)[:6], "--results-dir", tmp_path, "--epochs", 3]
    vae = tmp_path / "smoke" / "vae"
    process = _start(*args)
    _wait_for(lambda: (vae / "checkpoint" / "progress.json").exists(), process)
    _kill(process)
    saved = read_json(vae / "checkpoint" / "progress.json")
    assert 1 <= saved["epoch"] < 3
    output = invoke(*args).output
    assert "resuming" in output
    metrics = (vae / "metrics.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in metrics[1:]] == list(range(1, 4))
    assert read_json(vae / "manifest.json")["status"] == "complete"
    assert "complete" in invoke(*args).output  # a finished stage is not redone


def test_cma_es_killed_mid_run_continues_the_same_trajectory(smoke_run, tmp_path):
    root, _ = smoke_run
    for name in ("a", "b"):
        shutil.copytree(root / "results" / "smoke", tmp_path / name / "smoke",
                        ignore=shutil.ignore_patterns("controller-*", "evaluate"))
    gens = 40

    def args(name):
        return ["train-controller", *common(root)[:6], "--results-dir", tmp_path / name,
                "--generations", gens, "--max-steps", 300, "--population", 8]

    invoke(*args("a"))
    history_b = tmp_path / "b" / "smoke" / "controller-dream" / "history.csv"
    process = _start(*args("b"))
    _wait_for(lambda: history_b.exists() and len(history_b.read_text().splitlines()) > 3,
              process)
    _kill(process)
    done_at_kill = len(history_b.read_text().splitlines()) - 1
    assert done_at_kill < gens
    assert "resuming" in invoke(*args("b")).output
    a = tmp_path / "a" / "smoke" / "controller-dream"
    b = tmp_path / "b" / "smoke" / "controller-dream"
    assert (a / "history.csv").read_text() == (b / "history.csv").read_text()
    np.testing.assert_array_equal(np.load(a / "mean.npy"), np.load(b / "mean.npy"))
    np.testing.assert_array_equal(np.load(a / "best.npy"), np.load(b / "best.npy"))


def test_non_finite_loss_stops_training_and_keeps_the_last_checkpoint(smoke_run, tmp_path):
    root, _ = smoke_run
    shutil.copytree(root / "results" / "smoke" / "vae", tmp_path / "smoke" / "vae")
    result = invoke("train-rnn", *common(root)[:6], "--results-dir", tmp_path, "--epochs", 6,
                    "--batch-size", 64, "--learning-rate", "1e30", expect_ok=False)
    assert result.exit_code != 0 and "Traceback" not in result.output
    message = result.output.strip().splitlines()[-1]
    assert "non-finite" in message and "epoch 2" in message and "loss" in message
    rnn = tmp_path / "smoke" / "rnn"
    assert read_json(rnn / "checkpoint" / "progress.json")["epoch"] == 1
    assert read_json(rnn / "manifest.json")["status"] == "running"


def test_complete_stage_is_not_redone_without_force(smoke_run):
    root, _ = smoke_run
    series = root / "data" / "smoke" / "series"
    run_id = read_json(series / "manifest.json")["run_id"]
    output = invoke("encode", *common(root)).output
    assert "complete" in output and "--force" in output
    assert read_json(series / "manifest.json")["run_id"] == run_id
    before = (series / "series.h5").read_bytes()
    invoke("encode", *common(root), "--force")
    assert read_json(series / "manifest.json")["run_id"] != run_id
    import h5py

    with h5py.File(series / "series.h5") as new:
        mu = new["mu"][()]
    path = series / "before.h5"
    path.write_bytes(before)
    with h5py.File(path) as old:
        np.testing.assert_array_equal(old["mu"][()], mu)  # the same V gives the same series
    path.unlink()
    # Later stages still accept the re-encoded series only if it comes from the same V.
    assert read_json(series / "manifest.json")["inputs"]["vae"] == \
        read_json(root / "results" / "smoke" / "vae" / "manifest.json")["run_id"]


def test_workers_that_keep_crashing_end_the_run_with_a_message(tmp_path):
    process = _start("collect", "--preset", "smoke", "--name", "c", "--data-dir", tmp_path,
                     "--episodes", 4, "--max-steps", 400, "--workers", 2)
    deadline = time.time() + 240
    while process.poll() is None and time.time() < deadline:
        for pid in _children(process.pid):  # kill every worker as soon as it appears
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    last = output.strip().splitlines()[-1]
    assert "crashed 4 times in a row" in last and "re-run the same command" in last
    assert "Traceback" not in output


def test_more_epochs_train_a_complete_m_further_from_its_checkpoint(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path, parts=("data", "results"))
    rnn = tmp_path / "results" / "smoke" / "rnn"
    # The shared smoke run's series may have been re-encoded by another test (its M is then
    # stale): bring the copy's M up to date first, a complete 2-epoch M either way.
    invoke("train-rnn", *args)
    before = read_json(rnn / "manifest.json")
    rows = (rnn / "metrics.csv").read_text().splitlines()
    assert before["config"]["epochs"] == 2 and len(rows) == 3  # the header and 2 epochs

    # Fewer epochs, or more with another option changed, are not a continuation.
    assert "add --force" in invoke("train-rnn", *args, "--set", "rnn.epochs=1").output
    assert "add --force" in invoke("train-rnn", *args, "--set", "rnn.epochs=3",
                                   "--set", "rnn.dropout=0.2").output
    assert read_json(rnn / "manifest.json")["run_id"] == before["run_id"]

    output = invoke("train-rnn", *args, "--set", "rnn.epochs=3").output
    assert "2-epoch M" in output and "further, to 3 epochs" in output
    after = read_json(rnn / "manifest.json")
    assert after["status"] == "complete" and after["config"]["epochs"] == 3
    assert after["summary"]["epoch"] == 3 and after["seed"] == before["seed"]
    assert after["inputs"] == before["inputs"] and after["run_id"] != before["run_id"]
    # Its first two epochs are the complete run's, not trained again.
    assert (rnn / "metrics.csv").read_text().splitlines()[:3] == rows
    assert len((rnn / "metrics.csv").read_text().splitlines()) == 4
    # The controller trained on the 2-epoch M is stale now; the same command again is complete.
    assert "re-made" in invoke("train-controller", *args).output
    assert "complete" in invoke("train-rnn", *args, "--set", "rnn.epochs=3").output


def test_more_generations_evolve_a_complete_c_further_from_its_state(smoke_run, tmp_path):
    root, _ = smoke_run
    for name in ("a", "b"):
        shutil.copytree(root / "results" / "smoke", tmp_path / name / "smoke",
                        ignore=shutil.ignore_patterns("controller-*", "evaluate"))

    def args(name, generations, *more):
        return ["train-controller", *common(root)[:6], "--results-dir", tmp_path / name,
                "--generations", generations, "--max-steps", 60, "--population", 6, *more]

    invoke(*args("a", 5))
    invoke(*args("b", 3))
    b = tmp_path / "b" / "smoke" / "controller-dream"
    before = read_json(b / "manifest.json")
    # Fewer generations, or more with another option changed, are not a continuation.
    assert "add --force" in invoke(*args("b", 2)).output
    assert "add --force" in invoke(*args("b", 5, "--population", 8)).output
    assert read_json(b / "manifest.json")["run_id"] == before["run_id"]

    output = invoke(*args("b", 5)).output
    assert "3-generation C" in output and "further, to 5 generations" in output
    after = read_json(b / "manifest.json")
    assert after["status"] == "complete" and after["config"]["generations"] == 5
    assert after["inputs"] == before["inputs"] and after["run_id"] != before["run_id"]
    # 3 generations then 2 more are the 5-generation run: the same history, mean and best.
    a = tmp_path / "a" / "smoke" / "controller-dream"
    assert (a / "history.csv").read_text() == (b / "history.csv").read_text()
    np.testing.assert_array_equal(np.load(a / "mean.npy"), np.load(b / "mean.npy"))
    np.testing.assert_array_equal(np.load(a / "best.npy"), np.load(b / "best.npy"))
    assert "complete" in invoke(*args("b", 5)).output
