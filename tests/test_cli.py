"""Every stage through click's CliRunner on the smoke preset with the real env, and bad input."""

import json
import os

import numpy as np

from tests.conftest import common, copy_smoke, invoke
from worldmodels.core.artifacts import Layout, read_json
from worldmodels.data.store import list_episodes, read_episode


def test_help_lists_every_stage():
    output = invoke("--help").output
    for stage in ("collect", "train-vae", "encode", "train-rnn", "train-controller", "evaluate",
                  "pipeline"):
        assert stage in output


def test_stages_write_their_outputs(smoke_run):
    root, outputs = smoke_run
    layout = Layout(root / "data", root / "results", "smoke")
    paths = list_episodes(layout.rollouts)
    assert len(paths) == 4
    episode = read_episode(paths[0])
    assert episode["frames"].shape[1:] == (64, 64, 3) and episode["frames"].dtype == np.uint8
    assert "4,348,547 parameters" in outputs["train-vae"]
    assert "422,882 parameters" in outputs["train-rnn"] and "422,368" in outputs["train-rnn"]
    assert "867 parameters" in outputs["train-controller"]
    for path in ("vae/vae.weights.h5", "vae/metrics.csv", "vae/reconstructions.png",
                 "rnn/rnn.weights.h5", "rnn/metrics.csv", "controller-dream/best.npy",
                 "controller-dream/mean.npy", "controller-dream/history.csv"):
        assert (layout.experiment / path).exists(), path
    assert np.load(layout.controller("dream") / "best.npy").shape == (867,)
    for stage_dir in (layout.rollouts, layout.vae, layout.series_dir, layout.rnn,
                      layout.controller("dream")):
        manifest = read_json(stage_dir / "manifest.json")
        assert manifest["status"] == "complete" and "config" in manifest and "seed" in manifest
    metrics = (layout.rnn / "metrics.csv").read_text().splitlines()[0]
    assert metrics.split(",") == ["epoch", "loss", "mdn", "reward", "done"]
    history = (layout.controller("dream") / "history.csv").read_text().splitlines()
    assert history[0].startswith("generation,best,mean,worst") and len(history) == 3


def test_evaluate_writes_scores_json(smoke_run):
    root, outputs = smoke_run
    evaluations = root / "results" / "smoke" / "evaluate"
    real = json.loads((evaluations / "real-dream-best.json").read_text())
    for key in ("env", "where", "episodes", "mean", "std", "scores", "seeds"):
        assert key in real
    assert real["where"] == "real" and real["episodes"] == 2 == len(real["scores"])
    assert np.isclose(real["mean"], np.mean(real["scores"]))
    assert len(set(real["seeds"])) == 2
    controller = json.loads((root / "results/smoke/controller-dream/manifest.json").read_text())
    assert real["controller_run_id"] == controller["run_id"]
    assert real["controller_seed"] == controller["seed"] == real["seed"]
    assert real["code"] is None or len(real["code"]) >= 12  # a commit, where run from git
    dream = json.loads((evaluations / "dream-dream-best.json").read_text())
    assert dream["where"] == "dream" and "temperature" in dream
    assert "±" in outputs["evaluate"].splitlines()[-1]


def test_evaluate_with_action_noise_writes_its_own_file(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)
    evaluations = tmp_path / "results" / "smoke" / "evaluate"
    plain = (evaluations / "real-dream-best.json").read_text()
    short = ("--episodes", 2, "--max-steps", 40)
    invoke("evaluate", *args, *short, "--noise", "0.3")
    noisy = json.loads((evaluations / "real-dream-best-noise0.3.json").read_text())
    assert noisy["noise"] == 0.3 == noisy["config"]["noise"]
    assert noisy["seeds"] == json.loads(plain)["seeds"]  # the same tracks, C + noise
    assert (evaluations / "real-dream-best.json").read_text() == plain
    assert "complete" in invoke("evaluate", *args, *short, "--noise", "0.3").output
    assert "--noise" in _error("evaluate", *args, "--where", "dream", "--noise", "0.1")
    assert "--noise" in _error("evaluate", *args, "--noise", "1.5")


def test_evaluate_on_another_seed_leaves_the_runs_figure(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)[:-2]  # without C's own --seed 0
    evaluations = tmp_path / "results" / "smoke" / "evaluate"
    plain = (evaluations / "real-dream-best.json").read_text()
    invoke("evaluate", *args, "--seed", 7, "--episodes", 2, "--max-steps", 40)
    validation = json.loads((evaluations / "real-dream-best-seed7.json").read_text())
    assert validation["seed"] == 7 and validation["episodes"] == 2
    assert set(validation["seeds"]).isdisjoint(json.loads(plain)["seeds"])
    assert (evaluations / "real-dream-best.json").read_text() == plain  # no --force needed
    assert "complete" in invoke("evaluate", *args, "--seed", 7, "--episodes", 2,
                                "--max-steps", 40).output
    # report shows it beside the run's own figure, and says when C was trained again since.
    invoke("report", *args)
    report = tmp_path / "results" / "smoke" / "REPORT.md"
    line = (f"- episodes of seed 7: {validation['mean']:.1f} ± {validation['std']:.1f} "
            "(2 episodes)")
    assert line in report.read_text()
    best = tmp_path / "results" / "smoke" / "controller-dream" / "best.npy"
    later = (evaluations / "real-dream-best-seed7.json").stat().st_mtime + 10
    os.utime(best, (later, later))  # as if C were trained again after the validation
    invoke("report", *args)
    assert "- episodes of seed 7: out of date" in report.read_text()


def test_evaluation_tracks_differ_from_collection_tracks(smoke_run):
    root, _ = smoke_run
    collected = {int(read_episode(p)["attrs"]["seed"])
                 for p in list_episodes(root / "data" / "smoke" / "rollouts")}
    real = json.loads((root / "results/smoke/evaluate/real-dream-best.json").read_text())
    assert collected.isdisjoint(real["seeds"])


def test_real_controller_training_and_pipeline_skip(smoke_run):
    root, _ = smoke_run
    output = invoke("train-controller", *common(root), "--where", "real", "--population", "3",
                    "--trials", "1", "--generations", "1", "--max-steps", "20").output
    assert "scored in the real" in output
    assert (root / "results/smoke/controller-real/best.npy").exists()


def test_controller_variants_train_and_evaluate_in_their_own_folders(smoke_run):
    root, _ = smoke_run
    layout = Layout(root / "data", root / "results", "smoke")
    small = ("--population", "3", "--trials", "1", "--generations", "2", "--max-steps", "20")
    output = invoke("train-controller", *common(root), "--variant", "z-hidden", *small).output
    assert "z-hidden controller on z, 40 tanh hidden units, 1443 parameters" in output
    assert np.load(layout.controller("dream", "z-hidden") / "best.npy").shape == (1443,)
    invoke("evaluate", *common(root), "--variant", "z-hidden", "--where", "dream")
    scores = read_json(layout.evaluations / "dream-dream-z-hidden-best.json")
    assert scores["variant"] == "z-hidden" and len(scores["scores"]) == 2
    assert "train-controller --where dream --variant z" in _error(
        "evaluate", *common(root), "--variant", "z")


def test_dreams_after_a_burn_in_train_and_evaluate(smoke_run, tmp_path):
    from worldmodels.core.figures import read_rows

    args = copy_smoke(smoke_run, tmp_path)
    results = tmp_path / "results"
    output = invoke("train-controller", *args, "--burn-in", "5", "--population", "3",
                    "--generations", "3", "--recheck", "4", "--force").output
    assert "top rescored on 4 fresh rollouts" in output
    manifest = read_json(results / "smoke" / "controller-dream" / "manifest.json")
    assert manifest["config"]["burn_in"] == 5 and manifest["config"]["recheck"] == 4
    # The best so far is the best of the rechecked scores, not of the generations' tops.
    history = read_rows(results / "smoke" / "controller-dream" / "history.csv")
    assert [row["best_so_far"] for row in history] == \
        list(np.maximum.accumulate([row["recheck"] for row in history]))
    invoke("evaluate", *args, "--where", "dream", "--force")
    scores = read_json(results / "smoke" / "evaluate" / "dream-dream-best.json")
    assert scores["burn_in"] == 5 and max(scores["lengths"]) <= 40 - 5
    assert "shorter than --max-steps" in _error("train-controller", *args, "--burn-in", "40")


def test_dropout_in_m_kept_on_while_dreaming(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)
    results = tmp_path / "results"
    invoke("train-rnn", *args, "--dropout", "0.2", "--force")
    assert read_json(results / "smoke" / "rnn" / "manifest.json")["config"]["dropout"] == 0.2
    output = invoke("train-controller", *args, "--dropout", "0.2", "--action-noise", "0.1",
                    "--population", "3", "--generations", "2", "--force").output
    assert "dream dropout 0.2" in output and "action noise 0.1" in output
    controller = read_json(results / "smoke" / "controller-dream" / "manifest.json")
    assert controller["config"]["action_noise"] == 0.1
    invoke("evaluate", *args, "--where", "dream", "--force")
    scores = read_json(results / "smoke" / "evaluate" / "dream-dream-best.json")
    assert scores["dropout"] == 0.2 and scores["action_noise"] == 0.1
    assert "must be in [0, 1)" in _error("train-controller", *args, "--action-noise", "1")
    assert "must be in [0, 1)" in _error("train-controller", *args, "--dropout", "1")
    assert "must be in [0, 1)" in _error("train-rnn", *args, "--dropout", "-0.1")


def _error(*args):
    result = invoke(*args, expect_ok=False)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    return lines[-1]


def test_stage_before_its_inputs_names_the_missing_command(tmp_path):
    assert "worldmodels collect" in _error("train-vae", *common(tmp_path))
    assert "worldmodels collect" in _error("encode", *common(tmp_path))
    assert "worldmodels encode" in _error("train-rnn", *common(tmp_path))
    assert "worldmodels train-vae" in _error("train-controller", *common(tmp_path))
    assert "train-controller" in _error("evaluate", *common(tmp_path))
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.h5"))


def test_bad_options_are_one_line_errors(tmp_path):
    assert "Pong-v9" in _error("collect", *common(tmp_path), "--env", "Pong-v9")
    assert "--episodes" in _error("collect", *common(tmp_path), "--episodes", "-3")
    assert "--temperature" in _error("evaluate", *common(tmp_path), "--temperature", "0")
    assert "huge" in _error("collect", "--preset", "huge")
    assert not (tmp_path / "data" / "smoke" / "rollouts").exists()


def test_mismatched_series_is_refused_and_nothing_is_overwritten(smoke_run, tmp_path):
    root, _ = smoke_run
    layout = Layout(root / "data", root / "results", "smoke")
    manifest_path = layout.series_dir / "manifest.json"
    original = manifest_path.read_text()
    weights = (layout.rnn / "rnn.weights.h5").read_bytes()
    manifest = json.loads(original)
    manifest["inputs"]["vae"] = "another-v"
    manifest_path.write_text(json.dumps(manifest))
    try:
        assert "another V" in _error("train-rnn", *common(root))
        assert (layout.rnn / "rnn.weights.h5").read_bytes() == weights
    finally:
        manifest_path.write_text(original)


def test_report_prints_only_what_it_wrote(smoke_run, tmp_path):
    import subprocess
    import sys

    args = copy_smoke(smoke_run, tmp_path)
    done = subprocess.run([sys.executable, "-m", "worldmodels_cli", "report",
                           *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("wrote ") and "REPORT.md" in done.stdout
    assert "absl" not in done.stderr and "cuda" not in done.stderr.lower(), done.stderr
