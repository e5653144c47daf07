"""Stale stages: a stage whose inputs were re-made since it ran says so and runs again (without
--force); `report` and `runs` show it as stale; an unchanged one stays complete."""

from __future__ import annotations

import json
import shutil

from tests.conftest import copy_smoke, invoke


def _manifest(results, folder):
    return json.loads((results / "smoke" / folder / "manifest.json").read_text())


def test_a_stage_whose_input_was_re_made_is_stale_and_runs_again(smoke_run, tmp_path):
    common = copy_smoke(smoke_run, tmp_path)
    results = tmp_path / "results"
    # other controllers other tests trained in the session's smoke experiment would go stale
    # with M too: this test follows the zh controller of the dream alone
    for other in (results / "smoke").glob("controller-*"):
        if other.name != "controller-dream":
            shutil.rmtree(other)
    controller = _manifest(results, "controller-dream")["run_id"]

    # Unchanged: complete, nothing runs.
    output = invoke("train-controller", *common).output
    assert "train-controller: complete in" in output and "stale" not in output
    output = invoke("evaluate", *common).output
    assert "evaluate: complete in" in output and "stale" not in output

    output = invoke("train-rnn", *common, "--force").output
    rnn = _manifest(results, "rnn")["run_id"]
    assert "wrote" in output

    # The experiment's report and the runs table show C and its evaluation as stale.
    invoke("report", *common)
    report = (results / "smoke" / "REPORT.md").read_text()
    assert "C stale (its input rnn was re-made since)" in report
    assert "stale (its input rnn was re-made since): `worldmodels evaluate" in report
    table = json.loads(invoke("runs", "--results-dir", results, "--data-dir",
                              smoke_run[0] / "data", "--json").output)
    assert table["experiments"][0]["stages"]["train-controller"] == "stale"
    assert table["experiments"][0]["stages"]["evaluate"] == "stale"
    assert table["experiments"][0]["stages"]["train-rnn"] == "complete"

    # evaluate notices the new M under its C: stale, and so is C (evaluating a C with an M it
    # was not trained with is refused), which has to be trained again first.
    path = results / "smoke" / "evaluate" / "real-dream-best.json"
    refused = invoke("evaluate", *common, expect_ok=False)
    assert refused.exit_code != 0
    assert f"evaluate: stale in {path}: its input rnn was re-made since" in refused.output
    assert "re-run `worldmodels train-controller" in refused.output
    assert "(it is stale too)" in refused.output

    # train-controller runs again without --force.
    output = invoke("train-controller", *common).output
    directory = results / "smoke" / "controller-dream"
    assert (f"train-controller: stale in {directory}: its input rnn was re-made since; "
            "re-running") in output
    manifest = _manifest(results, "controller-dream")
    assert manifest["run_id"] != controller and manifest["inputs"]["rnn"] == rnn
    assert manifest["status"] == "complete"
    output = invoke("train-controller", *common).output
    assert "train-controller: complete in" in output and "stale" not in output

    # evaluate then replaces its result (that of the earlier C), recording V and M.
    output = invoke("evaluate", *common).output
    assert f"replacing {path}: it scored an earlier run of the controller" in output
    assert json.loads(path.read_text())["inputs"]["rnn"] == rnn
    assert "evaluate: complete in" in invoke("evaluate", *common).output

    invoke("report", *common)
    report = (results / "smoke" / "REPORT.md").read_text()
    assert "C stale" not in report
    scored = json.loads(path.read_text())
    assert f"{scored['mean']:.1f} ± {scored['std']:.1f}" in report  # the new score, shown
