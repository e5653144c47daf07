"""Bad input: one clear line, a non-zero exit, no traceback, nothing overwritten."""

from __future__ import annotations

import shutil

import h5py
import numpy as np

from tests.conftest import common, invoke
from worldmodels.core.artifacts import read_json, write_json


def _error(*args) -> str:
    result = invoke(*args, expect_ok=False)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    return lines[-1]


def _snapshot(directory):
    return {p: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _copy_experiment(smoke_run, tmp_path):
    root, _ = smoke_run
    shutil.copytree(root / "data", tmp_path / "data")
    shutil.copytree(root / "results", tmp_path / "results")
    return tmp_path


def test_corrupt_episode_file_is_named_and_can_be_skipped(smoke_run, tmp_path):
    root = _copy_experiment(smoke_run, tmp_path)
    episode = root / "data" / "smoke" / "rollouts" / "episode_00001.h5"
    content = episode.read_bytes()
    episode.write_bytes(content[: len(content) // 2])  # truncated
    vae = root / "results" / "smoke" / "vae"
    before = _snapshot(vae)
    message = _error("train-vae", *common(root), "--force")
    assert "episode_00001.h5" in message and "--skip-corrupt" in message
    assert _snapshot(vae) == before
    message = _error("encode", *common(root), "--force")
    assert "episode_00001.h5" in message
    output = invoke("encode", *common(root), "--force", "--skip-corrupt").output
    assert "skipping" in output and "3 episodes" in output.splitlines()[-1]


def test_frames_of_the_wrong_shape_are_refused(smoke_run, tmp_path):
    root = _copy_experiment(smoke_run, tmp_path)
    path = root / "data" / "smoke" / "rollouts" / "episode_00002.h5"
    with h5py.File(path, "w") as file:
        file["frames"] = np.zeros((11, 32, 32, 3), np.uint8)
        file["actions"] = np.zeros((10, 3), np.float32)
        file["rewards"] = np.zeros(10, np.float32)
        file["terminations"] = np.zeros(10, np.uint8)
    before = _snapshot(root / "data" / "smoke" / "series")
    message = _error("encode", *common(root), "--force")
    assert "episode_00002.h5" in message and "frames of shape (11, 32, 32, 3)" in message
    assert _snapshot(root / "data" / "smoke" / "series") == before


def test_m_built_for_another_z_size_is_refused(smoke_run, tmp_path):
    root = _copy_experiment(smoke_run, tmp_path)
    rnn_manifest = root / "results" / "smoke" / "rnn" / "manifest.json"
    manifest = read_json(rnn_manifest)
    manifest["inputs"]["z_size"] = 64
    write_json(rnn_manifest, manifest)
    controller = root / "results" / "smoke" / "controller-dream"
    before = _snapshot(controller)
    message = _error("train-controller", *common(root), "--force")
    assert "z of 64" in message and "z of 32" in message
    assert _snapshot(controller) == before


def test_controller_for_other_inputs_is_refused(smoke_run, tmp_path):
    root = _copy_experiment(smoke_run, tmp_path)
    best = root / "results" / "smoke" / "controller-dream" / "best.npy"
    np.save(best, np.zeros(32 * 3 + 3))  # a z-only controller
    evaluations = root / "results" / "smoke" / "evaluate"
    before = _snapshot(evaluations)
    message = _error("evaluate", *common(root), "--force")
    assert "99 parameters" in message and "867" in message
    assert _snapshot(evaluations) == before


def test_unwritable_output_is_an_error_before_any_work(smoke_run, tmp_path):
    root, _ = smoke_run
    blocker = tmp_path / "results"
    blocker.write_text("a file where a directory should be")
    message = _error("train-vae", *common(root)[:6], "--results-dir", blocker)
    assert "is a file" in message  # click checks the option itself
    message = _error("train-vae", *common(root)[:6], "--results-dir", blocker / "nested")
    assert "cannot write" in message  # the record or the stage: one line
    assert blocker.read_text() == "a file where a directory should be"
    message = _error("collect", "--preset", "smoke", "--data-dir", blocker / "nested")
    assert "cannot write to" in message


def test_out_of_range_options(tmp_path):
    assert "--workers" in _error("collect", *common(tmp_path), "--workers", "0")
    assert "--episodes" in _error("evaluate", *common(tmp_path), "--episodes", "-1")
    assert "--temperature" in _error("train-controller", *common(tmp_path),
                                     "--temperature", "-0.5")
    assert "--population" in _error("train-controller", *common(tmp_path), "--population", "1")
    assert "at least 3" in _error("train-controller", *common(tmp_path), "--population", "2")
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


def test_empty_data_directory(tmp_path):
    (tmp_path / "data" / "smoke" / "rollouts").mkdir(parents=True)
    message = _error("train-vae", *common(tmp_path))
    assert "no rollouts" in message and "worldmodels collect" in message


def test_force_checks_everything_before_removing_anything(smoke_run, tmp_path):
    root = _copy_experiment(smoke_run, tmp_path)
    controller = root / "results" / "smoke" / "controller-dream"
    before = _snapshot(controller)
    assert "--seed" in _error("train-controller", *common(root)[:-2], "--seed", "-1", "--force")
    # A burn-in longer than every collected episode is found only when the series is read:
    # still before --force removes the complete controller, and no manifest is left running.
    message = _error("train-controller", *common(root), "--burn-in", "60", "--max-steps", "100",
                     "--force")
    assert "burn-in" in message
    assert _snapshot(controller) == before
    # The corrected command is not blocked by the failed one.
    assert "complete" in invoke("train-controller", *common(root)).output


def test_evaluate_with_other_options_does_not_replace_an_evaluation(smoke_run, tmp_path):
    root = _copy_experiment(smoke_run, tmp_path)
    evaluations = root / "results" / "smoke" / "evaluate"
    before = _snapshot(evaluations)
    for options in (("--episodes", "3"), ("--max-steps", "30")):
        assert "--force" in _error("evaluate", *common(root), *options)
    assert "--force" in _error("evaluate", *common(root), "--where", "dream",
                               "--temperature", "0.9")
    assert _snapshot(evaluations) == before


def test_compare_with_other_options_does_not_replace_a_comparison(smoke_run, tmp_path):
    root = _copy_experiment(smoke_run, tmp_path)
    short = ("--temperatures", "1.0", "--episodes", "2", "--max-steps", "20")
    invoke("compare", *common(root), *short)
    compare = root / "results" / "smoke" / "compare"
    before = _snapshot(compare)
    assert "--force" in _error("compare", *common(root), "--temperatures", "0.5",
                               *short[2:])
    assert _snapshot(compare) == before


def test_report_of_an_experiment_that_does_not_exist(tmp_path):
    assert "no experiment" in _error("report", *common(tmp_path))
    assert not (tmp_path / "results").exists()


def test_resumed_collect_reports_the_mean_of_all_episodes(tmp_path):
    args = common(tmp_path) + ["--max-steps", "20"]
    invoke("collect", *args, "--episodes", "2")
    rollouts = tmp_path / "data" / "smoke" / "rollouts"
    manifest = read_json(rollouts / "manifest.json")
    write_json(rollouts / "manifest.json", dict(manifest, status="running"))  # as if killed
    (rollouts / "episode_00001.h5").unlink()
    output = invoke("collect", *args, "--episodes", "2").output
    returns = [float(h5py.File(p, "r").attrs["return"]) for p in sorted(rollouts.glob("*.h5"))]
    assert len(returns) == 2
    assert f"mean return {np.mean(returns):.1f}" in output
    assert np.isclose(read_json(rollouts / "manifest.json")["summary"]["mean_return"],
                      np.mean(returns))
