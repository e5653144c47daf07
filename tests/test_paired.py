"""worldmodels paired: two real evaluations compared on the episodes they share."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import copy_smoke, invoke


def _table(output: str) -> dict:
    return json.loads(output[output.index("{"):])


def test_paired_differences_two_controllers_on_the_same_tracks(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)
    evaluations = tmp_path / "results" / "smoke" / "evaluate"
    invoke("evaluate", *args, "--params", "mean")  # the same tracks, another controller
    best = json.loads((evaluations / "real-dream-best.json").read_text())
    mean = json.loads((evaluations / "real-dream-mean.json").read_text())
    assert best["seeds"] == mean["seeds"]
    result = _table(invoke("paired", evaluations / "real-dream-best.json",
                           evaluations / "real-dream-mean.json", "--json").output)
    difference = np.array(mean["scores"]) - np.array(best["scores"])
    (row,) = result["pairs"]
    assert row["episodes"] == len(best["scores"]) and result["pooled"] is None
    assert row["difference"] == pytest.approx(difference.mean())
    assert row["paired_se"] == pytest.approx(difference.std(ddof=1) / np.sqrt(len(difference)))
    assert row["better"] == (difference > 0).sum() and row["worse"] == (difference < 0).sum()
    table = invoke("paired", evaluations / "real-dream-best.json",
                   evaluations / "real-dream-mean.json").output
    assert f"{difference.mean():+,.1f}" in table


def test_paired_folders_pair_episodes_by_seed_and_pool_files_of_one_name(smoke_run, tmp_path):
    root, _ = smoke_run
    original = root / "results" / "smoke" / "evaluate" / "real-dream-best.json"
    payload = json.loads(original.read_text())
    base, new = tmp_path / "base" / "evaluate", tmp_path / "new" / "evaluate"
    base.mkdir(parents=True), new.mkdir(parents=True)
    # the candidate's file lists the same episodes in the other order, +10 on the first track
    # and +4 on the second; a second file of its own name (a validation) pools with the first
    scores = list(payload["scores"])
    moved = dict(payload, seeds=payload["seeds"][::-1],
                 scores=[scores[1] + 4.0, scores[0] + 10.0])
    for folder, content in ((base, payload), (new, moved)):
        (folder / "real-dream-best.json").write_text(json.dumps(content))
        (folder / "real-dream-best-seed7.json").write_text(json.dumps(content))
    (new / "real-dream-best-noise0.1.json").write_text(json.dumps(moved))  # in one only
    result = _table(invoke("paired", base.parent, new, "--json").output)
    assert [row["evaluation"] for row in result["pairs"]] == ["real-dream-best-seed7.json",
                                                             "real-dream-best.json"]
    assert result["pooled"]["episodes"] == 4
    assert result["pooled"]["difference"] == pytest.approx(7.0)
    assert result["pooled"]["better"] == 4
    only = _table(invoke("paired", base, new, "--only", "*seed7*", "--json").output)
    assert len(only["pairs"]) == 1 and only["pooled"] is None


def test_paired_refuses_what_cannot_be_paired(smoke_run, tmp_path):
    root, _ = smoke_run
    evaluations = root / "results" / "smoke" / "evaluate"
    payload = json.loads((evaluations / "real-dream-best.json").read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dict(payload, seeds=[s + 1000 for s in payload["seeds"]])))
    refused = invoke("paired", evaluations / "real-dream-best.json", other, expect_ok=False)
    assert refused.exit_code != 0 and "share no episode seed" in refused.output
    other.write_text(json.dumps(dict(payload, noise=0.3)))
    refused = invoke("paired", evaluations / "real-dream-best.json", other, expect_ok=False)
    assert "differ in noise" in refused.output
    refused = invoke("paired", evaluations / "dream-dream-best.json", other, expect_ok=False)
    assert "not a real evaluation" in refused.output
    other.write_text("[1, 2")
    refused = invoke("paired", evaluations / "real-dream-best.json", other, expect_ok=False)
    assert "not readable JSON" in refused.output and len(refused.output.splitlines()) == 1
    refused = invoke("paired", tmp_path, evaluations, expect_ok=False)
    assert "no evaluation of the same name" in refused.output
