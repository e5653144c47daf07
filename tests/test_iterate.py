"""Iterative training through the real CLI on a copy of the smoke experiment."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

from tests.conftest import copy_smoke, invoke
from worldmodels.core.artifacts import read_json


def _predicted_return(results, episodes, vae_dir) -> float:
    """The mean return M of ``results`` predicts along ``episodes`` (HDF5 files), their
    frames encoded afresh by V (its mean z) and their recorded actions."""
    import tensorflow as tf

    from worldmodels.model.rnn import load_rnn
    from worldmodels.model.vae import load_vae, to_unit

    manifest = read_json(results / "rnn" / "manifest.json")
    z_size = int(manifest["inputs"]["z_size"])
    rnn = load_rnn(results / "rnn", z_size, manifest["config"])
    vae = load_vae(vae_dir, z_size)
    totals = []
    for path in episodes:
        with h5py.File(path) as file:
            frames, actions = file["frames"][()], file["actions"][()]
        z = vae.encode(to_unit(frames))[0].numpy()
        inputs = np.concatenate([z[:-1], actions], -1)[None].astype(np.float32)
        predictions, _ = rnn(tf.constant(inputs))
        totals.append(float(predictions["reward"].numpy().sum()))
    return float(np.mean(totals))


def test_iterate_adds_controller_episodes_and_trains_m_and_c_further(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path, ("data", "results"))
    rollouts = tmp_path / "data" / "smoke" / "rollouts"
    results = tmp_path / "results" / "smoke"
    before = len(list(rollouts.glob("episode_*.h5")))
    old_rnn = read_json(results / "rnn" / "manifest.json")
    old_c = read_json(results / "controller-dream" / "manifest.json")

    output = invoke("iterate", *args, "--rounds", "1", "--episodes", "2", "--noise", "0.2").output
    assert "round 1: collection with C + noise" in output
    episodes = sorted(rollouts.glob("episode_*.h5"))
    assert len(episodes) == before + 2
    with h5py.File(episodes[-1]) as file:
        assert file.attrs["policy"] == "controller+noise(round 1)"
        actions = file["actions"][()]
        assert np.isclose(file.attrs["return"], file["rewards"][()].sum())
        assert len(file["frames"]) == len(actions) + 1
    assert (actions[:, 1:] >= 0).all() and (np.abs(actions) <= 1).all()
    series = read_json(tmp_path / "data" / "smoke" / "series" / "manifest.json")
    assert series["inputs"]["episodes"] == before + 2
    # the episodes encoded before were copied from the old series (the same V), not encoded
    # again, and hold what the first encode wrote
    assert series["summary"]["copied"] == before
    assert f"({before} copied from the series before" in output
    with h5py.File(smoke_run[0] / "data" / "smoke" / "series" / "series.h5") as old_series, \
            h5py.File(tmp_path / "data" / "smoke" / "series" / "series.h5") as new_series:
        np.testing.assert_array_equal(new_series["mu"][:before, :old_series["mu"].shape[1]],
                                      old_series["mu"][()])
        np.testing.assert_array_equal(new_series["lengths"][:before], old_series["lengths"][()])
        assert new_series["sources"][before].decode().startswith(episodes[before].name + " ")
    rnn = read_json(results / "rnn" / "manifest.json")
    assert rnn["config"]["epochs"] == old_rnn["config"]["epochs"] + 1
    assert rnn["inputs"]["series"] == series["run_id"] and rnn["run_id"] != old_rnn["run_id"]
    controller = read_json(results / "controller-dream" / "manifest.json")
    assert controller["config"]["generations"] == old_c["config"]["generations"] + 1
    assert controller["inputs"]["rnn"] == rnn["run_id"]
    rounds = read_json(results / "iterate" / "rounds.json")
    assert [row["round"] for row in rounds["rounds"]] == [1] and rounds["current"] is None
    # M before the round, read along the two new episodes: its predicted return, recomputed
    # here from the old M and the episodes' files (V's mean z, real actions)
    assert "M before the round predicted" in output
    assert rounds["rounds"][0]["m_predicted_return"] == pytest.approx(
        _predicted_return(smoke_run[0] / "results" / "smoke", episodes[-2:],
                          results / "vae"), abs=0.06)
    invoke("evaluate", *args, "--force")  # the iterated controller fits the new M
    invoke("report", *args)
    assert "| 1 | " in (results / "REPORT.md").read_text().split("## Iterative training")[1]

    # Asking for more rounds continues; other settings are refused with one line.
    invoke("iterate", *args, "--rounds", "2", "--episodes", "2", "--noise", "0.2")
    assert len(read_json(results / "iterate" / "rounds.json")["rounds"]) == 2
    assert len(list(rollouts.glob("episode_*.h5"))) == before + 4
    # Each round's M and C are kept, and can be evaluated after later rounds trained them on.
    kept = results / "iterate" / "round-1"
    assert read_json(kept / "controller-dream" / "manifest.json")["run_id"] == controller["run_id"]
    assert read_json(kept / "rnn" / "manifest.json")["run_id"] == rnn["run_id"]
    invoke("evaluate", *args, "--round", 1, "--episodes", 1, "--max-steps", 20)
    scores = read_json(kept / "evaluate" / "real-dream-best.json")
    assert scores["round"] == 1 and scores["controller_run_id"] == controller["run_id"]
    invoke("report", *args)
    rounds_table = (results / "REPORT.md").read_text().split("## Iterative training")[1]
    row = next(line for line in rounds_table.splitlines() if line.startswith("| 1 | "))
    assert f"{scores['mean']:.1f} ± {scores['std']:.1f} (1)" in row
    result = invoke("evaluate", *args, "--round", 7, expect_ok=False)
    assert result.exit_code != 0 and "round 7" in result.output.splitlines()[-1]
    # resolution can dream the final C's candidates in round 1's M (a judge C's last round was
    # not evolved in), reusing the real side of the run's own resolution.json
    invoke("resolution", *args)
    invoke("resolution", *args, "--judge-round", 1)
    own = read_json(results / "controller-dream" / "resolution.json")
    judged = read_json(results / "controller-dream" / "resolution-judge-round-1.json")
    assert judged["judge"] == {"round": 1, "rnn_run_id": rnn["run_id"]}
    assert ([r["real_tracks"] for r in judged["candidates"]]
            == [r["real_tracks"] for r in own["candidates"]])
    assert ([r["dream_seeds"] for r in judged["candidates"]]
            != [r["dream_seeds"] for r in own["candidates"]])
    assert (results / "controller-dream" / "resolution-judge-round-1.png").exists()
    result = invoke("resolution", *args, "--judge-round", 5, expect_ok=False)
    assert result.exit_code != 0 and "round 5" in result.output.splitlines()[-1]
    result = invoke("iterate", *args, "--rounds", "3", "--episodes", "3", expect_ok=False)
    assert result.exit_code != 0 and "other settings" in result.output.splitlines()[-1]
    # train-controller and train-rnn again (pipeline after iterate) explain instead of
    # advising a --force that would discard the rounds, and name what trains further.
    for stage in ("train-rnn", "train-controller"):
        said = invoke(stage, *args).output
        assert "trained further by iterate (2 rounds)" in said, said
        assert "`worldmodels iterate --rounds 3 --name smoke --results-dir" in said, said
    # A controller trained again since the last round is not continued as if it were it.
    invoke("train-controller", *args, "--force")
    result = invoke("iterate", *args, "--rounds", "3", "--episodes", "2", "--noise", "0.2",
                    expect_ok=False)
    assert result.exit_code != 0 and "trained again since" in result.output.splitlines()[-1]


def test_controller_collection_is_deterministic_and_noise_changes_it(smoke_run, tmp_path):
    from worldmodels.core.artifacts import Layout
    from worldmodels.model.agent import collect_with_controller
    from worldmodels.model.controller import Controller
    from worldmodels.model.world import load_world

    root, _ = smoke_run
    world = load_world(Layout(root / "data", root / "results", "smoke"))
    spec = Controller("zh", world.z_size, world.hidden_size)
    params = np.load(root / "results" / "smoke" / "controller-dream" / "best.npy")
    runs = {}
    for label, noise in (("a", 0.3), ("b", 0.3), ("quiet", 0.0)):
        collect_with_controller(tmp_path / label, world, spec, params, [5, 6], 0, noise,
                                30, label, workers=1, progress=False)
        with h5py.File(tmp_path / label / "episode_00001.h5") as file:
            runs[label] = file["actions"][()]
    np.testing.assert_array_equal(runs["a"], runs["b"])
    assert not np.allclose(runs["a"], runs["quiet"])


def test_iterate_killed_while_training_m_or_c_is_continued_by_iterate_and_pipeline(
        smoke_run, tmp_path):
    """A round SIGKILLed in its M step, then in its C step: the stages it was training say
    the round owns them (the pipeline goes on to iterate instead of refusing), and iterate
    continues the same runs from their checkpoints to the round's totals."""
    from tests.test_resume import _kill, _start, _wait_for

    args = copy_smoke(smoke_run, tmp_path, ("data", "results"))
    results = tmp_path / "results" / "smoke"
    old_rnn = read_json(results / "rnn" / "manifest.json")
    old_c = read_json(results / "controller-dream" / "manifest.json")
    rounds_args = ["--rounds", "1", "--episodes", "2", "--rnn-epochs", "40",
                   "--generations", "40"]

    def step_running(step, directory):
        def reached():
            try:
                current = read_json(results / "iterate" / "rounds.json")["current"]
                manifest = read_json(directory / "manifest.json")
            except Exception:  # mid-write: poll again
                return False
            return (current or {}).get("step") == step and manifest["status"] == "running"
        return reached

    # killed in its M step: train-rnn and train-controller (C stands on that M) name iterate
    process = _start("iterate", *args, *rounds_args)
    _wait_for(step_running("rnn", results / "rnn"), process)
    time.sleep(1.0)  # into the step's training
    _kill(process)
    killed_m = read_json(results / "rnn" / "manifest.json")
    assert killed_m["status"] == "running"
    for stage in ("train-rnn", "train-controller"):
        said = invoke(stage, *args).output
        assert "was stopped before it finished training the M and C" in said, said
    assert read_json(results / "rnn" / "manifest.json") == killed_m  # left for iterate

    # the pipeline goes on to iterate, which continues M; killed again in the C step
    pipeline = ["pipeline", *args, "--set", "iterate.rnn_epochs=40", "--set",
                "iterate.generations=40"]
    process = _start(*pipeline)
    _wait_for(step_running("controller", results / "controller-dream"), process)
    time.sleep(1.0)
    _kill(process)
    killed = read_json(results / "controller-dream" / "manifest.json")
    assert killed["status"] == "running"
    rnn = read_json(results / "rnn" / "manifest.json")
    assert rnn["status"] == "complete" and rnn["run_id"] == killed_m["run_id"]
    assert rnn["config"]["epochs"] == old_rnn["config"]["epochs"] + 40

    said = invoke(*pipeline).output  # finishes the round, then evaluates
    assert "iterate's round 1 is unfinished: going on with it" in said, said
    assert "== train-vae" not in said  # the stages before iterate are the round's
    rounds = read_json(results / "iterate" / "rounds.json")
    assert rounds["current"] is None and len(rounds["rounds"]) == 1
    controller = read_json(results / "controller-dream" / "manifest.json")
    assert controller["status"] == "complete"
    assert controller["config"]["generations"] == old_c["config"]["generations"] + 40
    assert controller["run_id"] == killed["run_id"]  # continued, not started again
    assert controller["inputs"]["rnn"] == rnn["run_id"]
    history = (results / "controller-dream" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + controller["config"]["generations"]
