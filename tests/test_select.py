"""`worldmodels select`: C's checkpoints scored on real validation tracks, and the evaluation of
the chosen one, labelled apart from the pure dream figure."""

from __future__ import annotations

import json
import shutil

import numpy as np

from tests.conftest import copy_smoke, invoke
from worldmodels.scoring.selection import candidates


def test_select_chooses_among_cma_es_checkpoints_on_validation_tracks(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)
    results = tmp_path / "results" / "smoke"
    controller = results / "controller-dream"
    refused = invoke("evaluate", *args, "--params", "selected", expect_ok=False)
    assert refused.exit_code != 0 and "run `worldmodels select --name smoke" in refused.output

    output = invoke("select", *args).output
    assert "dream-trained, real-selected" in output
    selection = json.loads((controller / "selection.json").read_text())
    rows = selection["candidates"]
    # The smoke preset: 2 generations, a mean every generation, then the kept best.
    assert [(r["generation"], r["kind"]) for r in rows[:2]] == [(1, "mean"), (2, "mean")]
    assert rows[2]["kind"] == "best" and len(rows) == 3
    assert all(len(r["returns"]) == 1 for r in rows) and len(selection["tracks"]) == 1
    chosen = selection["chosen"]
    # Each candidate is also scored in 2 dreams (the smoke preset's), as a generation is.
    assert all(isinstance(r["dream"], float) for r in rows)
    assert -1.0 <= selection["rank_correlation"] <= 1.0
    assert selection["real_of_dream_choice"] == rows[int(np.argmax([r["dream"] for r in rows]))
                                                     ]["mean"]
    assert chosen == int(np.argmax([r["mean"] for r in rows]))
    assert (controller / "selection.png").stat().st_size > 10_000
    # The candidates are CMA-ES as it was: the last mean and the kept best are the files
    # train-controller wrote, and the first mean is that of a run stopped after 1 generation.
    best = np.load(controller / "best.npy")
    _, params = candidates(controller, best, every=1)
    np.testing.assert_array_equal(params[1], np.load(controller / "mean.npy"))
    np.testing.assert_array_equal(params[2], best)
    np.testing.assert_array_equal(np.load(controller / "selected.npy"), params[chosen])
    short = tmp_path / "short"
    shutil.copytree(results, short / "smoke", ignore=shutil.ignore_patterns("controller-*"))
    invoke("train-controller", *args[:4], "--data-dir", args[5], "--results-dir", short,
           "--generations", 1)
    np.testing.assert_array_equal(params[0], np.load(short / "smoke" / "controller-dream" /
                                                     "mean.npy"))

    # Validation tracks are none of the test tracks; the evaluation says how C was chosen.
    output = invoke("evaluate", *args, "--params", "selected").output
    assert "dream-trained, real-selected" in output
    evaluation = json.loads((results / "evaluate" / "real-dream-selected.json").read_text())
    assert set(evaluation["seeds"]).isdisjoint(selection["tracks"])
    assert evaluation["selection"]["generation"] == rows[chosen]["generation"]
    assert evaluation["selection"]["label"] == "dream-trained, real-selected"

    invoke("report", *args)
    report = (results / "REPORT.md").read_text()
    assert "## Dream-trained, real-selected" in report
    assert f"On the test tracks: {evaluation['mean']:.1f} ± {evaluation['std']:.1f}" in report

    assert "complete" in invoke("select", *args).output  # not redone
    assert "complete" in invoke("evaluate", *args, "--params", "selected").output
    # `select --every 2` considers generation 2's mean and the kept best only.
    invoke("select", *args, "--every", 2, "--force")
    again = json.loads((controller / "selection.json").read_text())
    assert [r["generation"] for r in again["candidates"]] == [2, rows[2]["generation"]]
    # An evaluation of another choice than the selection's is not kept as complete.
    path = results / "evaluate" / "real-dream-selected.json"
    other = dict(evaluation, selection=dict(evaluation["selection"], generation=99))
    path.write_text(json.dumps(other))
    invoke("report", *args)
    assert "On the test tracks: out of date" in (results / "REPORT.md").read_text()
    output = invoke("evaluate", *args, "--params", "selected").output
    assert "an earlier selection" in output
    assert json.loads(path.read_text())["selection"]["generation"] == \
        again["selected"]["generation"]

    kept = {name: (controller / name).read_bytes() for name in ("selection.json",
                                                               "selected.npy")}
    invoke("train-controller", *args, "--generations", 1, "--force")
    assert not (controller / "selected.npy").exists()  # a new run has no selection yet
    for name, content in kept.items():  # an old selection put back is refused
        (controller / name).write_bytes(content)
    stale = invoke("evaluate", *args, "--params", "selected", "--force", expect_ok=False)
    assert stale.exit_code != 0 and "earlier run of the controller" in stale.output
