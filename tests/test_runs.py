"""worldmodels runs: experiments in one table, two seeds of a recipe pooled into one row."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import invoke


@pytest.fixture
def two_seeds(smoke_run, tmp_path):
    """The smoke experiment, and a copy of it standing for a second seed of the same recipe
    (its evaluation's seed and scores changed), and a third run of another recipe."""
    root, _ = smoke_run
    results = tmp_path / "results"
    shutil.copytree(root / "results" / "smoke", results / "s0")
    shutil.copytree(root / "results" / "smoke", results / "s1")
    shutil.copytree(root / "results" / "smoke", results / "other")
    for name in ("s0", "s1", "other"):
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(root / "data" / "smoke", tmp_path / "data" / name,
                        ignore=shutil.ignore_patterns("*.h5"))
    path = results / "s1" / "evaluate" / "real-dream-best.json"
    payload = json.loads(path.read_text())
    payload.update(seed=1, scores=[s + 10.0 for s in payload["scores"]])
    payload.update(mean=float(np.mean(payload["scores"])))
    path.write_text(json.dumps(payload))
    manifest = results / "other" / "vae" / "manifest.json"
    payload = json.loads(manifest.read_text())
    payload["config"]["epochs"] = 99
    manifest.write_text(json.dumps(payload))
    return tmp_path


def test_runs_pools_two_seeds_of_a_recipe_with_a_standard_error(two_seeds):
    common = ["--results-dir", two_seeds / "results", "--data-dir", two_seeds / "data"]
    output = invoke("runs", *common, "--group-by", "recipe", "--json").output
    table = json.loads(output[output.index("{"):])
    rows = {row["name"]: row for row in table["experiments"]}
    assert set(rows) == {"s0", "s1", "other"}
    assert rows["s0"]["recipe"] == rows["s1"]["recipe"] != rows["other"]["recipe"]
    # copies of one experiment: the same state at every stage (complete, unless another test
    # sharing the session's smoke experiment re-made one of its inputs: then stale in both)
    assert rows["s0"]["stages"] == rows["s1"]["stages"]
    assert set(rows["s0"]["stages"].values()) <= {"complete", "stale"}, rows["s0"]["stages"]
    pooled = {tuple(group["names"]): group for group in table["recipes"]}
    group = pooled[("s0", "s1")]
    means = [rows["s0"]["real_mean"], rows["s1"]["real_mean"]]
    assert group["seeds"] == [0, 1] and group["per_seed"] == means
    assert group["real_mean"] == pytest.approx(np.mean(means))
    assert group["real_se_across_seeds"] == pytest.approx(np.std(means, ddof=1) / np.sqrt(2))
    assert pooled[("other",)]["real_se_across_seeds"] is None


def test_runs_writes_its_table_and_figure_and_filters_by_name(two_seeds):
    common = ["--results-dir", two_seeds / "results", "--data-dir", two_seeds / "data"]
    output = invoke("runs", *common, "--names", "s*", "--group-by", "recipe",
                    "--out", "seeds").output
    assert "| s0 |" in output and "| other |" not in output and "s0, s1" in output
    written = two_seeds / "results" / "seeds"
    for name in ("runs.md", "runs.json", "runs.csv", "runs.png"):
        assert (written / name).stat().st_size > 0, name
    assert "seeds" not in json.dumps([r["name"] for r in json.loads(
        (written / "runs.json").read_text())["experiments"]])
    csv_text = invoke("runs", *common, "--csv").output
    assert csv_text.splitlines()[0].startswith("name,preset,seed,env")
    assert invoke("runs", *common, "--names", "nothing", expect_ok=False).exit_code != 0


def test_runs_shows_the_resolution_a_run_measured(two_seeds):
    common = ["--results-dir", two_seeds / "results", "--data-dir", two_seeds / "data"]
    path = two_seeds / "results" / "s0" / "controller-dream" / "resolution.json"
    path.write_text(json.dumps({"correlations": {"pooled": {"spearman_mean": 0.42}}}))
    output = invoke("runs", *common, "--json").output
    rows = {row["name"]: row for row in json.loads(output[output.index("{"):])["experiments"]}
    assert rows["s0"]["rank_correlation"] == 0.42 and rows["s0"]["rank_readable"] is None
    assert "0.42" in invoke("runs", *common).output
    # with the real split-half and the dream seeds, the most the figure could read beside it
    candidates = [{"kind": "mean", "dream_seeds": [float(i), float(i)]} for i in range(4)]
    path.write_text(json.dumps({"correlations": {"pooled": {"spearman_mean": 0.42}},
                                "real_split_half": {"pooled": 0.5}, "candidates": candidates}))
    assert "0.42 (≤ 0.82)" in invoke("runs", *common).output
    # a file of another shape: the figure is shown, its ceiling not guessed
    candidates[1]["dream_seeds"] = ["x", 1.0]
    path.write_text(json.dumps({"correlations": {"pooled": {"spearman_mean": 0.42}},
                                "real_split_half": {"pooled": 0.5}, "candidates": candidates}))
    output = invoke("runs", *common).output
    assert "0.42" in output and "(≤" not in output


def test_runs_on_a_validation_names_the_runs_own_seed(two_seeds):
    common = ["--results-dir", two_seeds / "results", "--data-dir", two_seeds / "data"]
    evaluations = two_seeds / "results" / "s0" / "evaluate"
    payload = json.loads((evaluations / "real-dream-best.json").read_text())
    payload.update(seed=7, scores=[s + 1.0 for s in payload["scores"]])
    payload.update(mean=float(np.mean(payload["scores"])))
    (evaluations / "real-dream-best-seed7.json").write_text(json.dumps(payload))
    output = invoke("runs", *common, "--evaluation", "real-dream-best-seed7", "--json").output
    rows = {row["name"]: row for row in json.loads(output[output.index("{"):])["experiments"]}
    assert rows["s0"]["seed"] == 0 and rows["s0"]["real_mean"] == payload["mean"]
    assert rows["s1"]["real_mean"] is None  # no validation there
