"""`worldmodels resolution`: the dream's order of C's checkpoints and of a fresh population
against their real order on validation tracks of their own."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import copy_smoke, invoke
from worldmodels.config import ResolutionConfig
from worldmodels.errors import WorldModelsError
from worldmodels.scoring.fidelity import spearman
from worldmodels.scoring.resolution import (
    as_trained,
    correlations,
    headline,
    kendall,
    readable,
    split_half,
)


def test_kendall_and_correlations_against_hand_counts():
    assert kendall([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # 6 pairs: (1,2) (1,3) (1,4) (2,3) (2,4) (3,4); y swaps the last two: 5 agree, 1 disagrees.
    assert abs(kendall([1, 2, 3, 4], [1, 2, 4, 3]) - 4 / 6) < 1e-12
    assert kendall([1, 1, 1], [1, 2, 3]) == 0.0
    real = np.array([1.0, 2.0, 3.0, 4.0])
    dream = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    result = correlations(dream, real, {"all": [0, 1, 2, 3], "few": [0, 1]})
    assert set(result) == {"all"}  # fewer than 3 candidates have no order worth a figure
    assert result["all"]["spearman"] == [1.0, -1.0]
    assert result["all"]["spearman_mean"] == 0.0 and result["all"]["spearman_std"] == 1.0
    returns = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    assert split_half(returns, [0, 1, 2]) == 1.0 and split_half(returns[:, :1], [0, 1, 2]) is None


def test_the_dream_side_scores_a_candidate_as_training_did_unless_told():
    # By default a candidate is dreamt as often as one generation of the run's C scored it.
    run = {"config": {"trials": 16}}
    assert as_trained(ResolutionConfig(), run).dream_episodes == 16
    assert as_trained(ResolutionConfig(dream_episodes=48), run).dream_episodes == 48
    for manifest in ({}, {"config": {"trials": True}}, {"config": {"trials": "16"}}):
        with pytest.raises(WorldModelsError, match="give --dream-episodes"):
            as_trained(ResolutionConfig(), manifest)


def test_readable_is_the_ceiling_both_sides_noise_leaves():
    rows = [{"kind": "mean", "dream_seeds": [float(i), float(i)]} for i in range(4)]
    result = {"candidates": rows, "real_split_half": {"pooled": 0.5, "population": None}}
    # the real side: split-half 0.5 stepped up to all tracks, 2 * 0.5 / 1.5; dream seeds agree
    assert abs(readable(result, "pooled") - np.sqrt(2 / 3)) < 1e-12
    assert readable(result, "population") is None
    for i, row in enumerate(rows):  # dream seeds that order the candidates oppositely
        row["dream_seeds"] = [float(i), float(-i)]
    assert readable(result, "pooled") == 0.0
    # A ceiling that low is said in words: the figure cannot tell a good dream from a bad one.
    result.update(correlations={"pooled": {"spearman_mean": 0.05, "spearman_std": 0.2,
                                           "candidates": 4}},
                  tracks=[1, 2, 3], real_of_dream_choice=400.0, real_best=600.0)
    assert "on 3 tracks the road itself hardly orders these candidates" in headline(result)
    for i, row in enumerate(rows):
        row["dream_seeds"] = [float(i), float(i)]
    result["real_split_half"]["pooled"] = 0.9
    assert "hardly orders" not in headline(result) and "at most 0.97 readable" in headline(result)


def test_resolution_through_the_cli_and_in_the_report(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)
    controller = tmp_path / "results" / "smoke" / "controller-dream"
    output = invoke("resolution", *args).output
    assert "rank correlation" in output and "split-half" in output
    result = json.loads((controller / "resolution.json").read_text())
    rows = result["candidates"]
    # The smoke preset: a mean every generation of 2, the kept best, 2 population samples.
    assert [r["kind"] for r in rows] == ["mean", "mean", "best", "population", "population"]
    assert len(result["tracks"]) == 2 and all(len(r["dream_seeds"]) == 2 for r in rows)
    assert result["config"]["dream_episodes"] == 2  # as many as C's training: smoke's trials
    pooled = result["correlations"]["pooled"]
    real = np.array([r["real"] for r in rows])
    seeds = np.array([r["dream_seeds"] for r in rows]).T
    assert pooled["spearman"] == [spearman(s, real) for s in seeds]
    assert result["real_of_dream_choice"] == real[int(np.argmax(seeds.mean(axis=0)))]
    # the population differs from the checkpoints and from each other
    assert rows[3]["real"] is not None and (controller / "resolution.png").stat().st_size > 5000
    again = invoke("resolution", *args).output
    assert "complete" in again and "rank correlation" in again
    other = invoke("resolution", *args, "--episodes", "1", expect_ok=False)
    assert other.exit_code != 0 and "--force" in other.output
    # Another dream side (more dreams per candidate) reuses the road's scores, driving nothing.
    dreams = invoke("resolution", *args, "--dream-episodes", "3", "--force").output
    assert "real scores in" in dreams and "are reused" in dreams
    redone = json.loads((controller / "resolution.json").read_text())
    assert redone["config"]["dream_episodes"] == 3
    assert [r["real_tracks"] for r in redone["candidates"]] == [r["real_tracks"] for r in rows]
    assert redone["real_split_half"] == result["real_split_half"]
    # The same measurement forced again, or another real side, drives the candidates again.
    assert "reused" not in invoke("resolution", *args, "--dream-episodes", "3", "--force").output
    fewer = invoke("resolution", *args, "--episodes", "1", "--force").output
    assert "reused" not in fewer
    assert len(json.loads((controller / "resolution.json").read_text())["tracks"]) == 1
    invoke("report", *args)
    report = (tmp_path / "results" / "smoke" / "REPORT.md").read_text()
    assert "## The dream's resolution" in report and "| pooled | 5 |" in report
    assert "readable" in report
