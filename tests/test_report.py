"""report: written from files only; parts not run are named with their commands."""

from __future__ import annotations

import pytest

from worldmodels import stages
from worldmodels.core.artifacts import Layout
from worldmodels.errors import WorldModelsError


def test_report_of_an_empty_experiment_names_the_commands(tmp_path):
    layout = Layout(tmp_path / "data", tmp_path / "results", "empty")
    with pytest.raises(WorldModelsError, match="no experiment"):
        stages.report(layout, "smoke")
    layout.experiment.mkdir(parents=True)
    path = stages.report(layout, "smoke").written[0]
    text = path.read_text()
    assert path == layout.experiment / "REPORT.md"
    assert "worldmodels pipeline --preset smoke --name empty" in text.replace("`", "")


def test_report_prints_no_tensorflow_log_lines(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "results" / "quiet").mkdir(parents=True)
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", "commands", "report", "--preset", "smoke", "--name", "quiet",
         "--data-dir", tmp_path / "data", "--results-dir", tmp_path / "results"],
        cwd=root, env=dict(environment, PYTHONPATH=str(root)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    assert "REPORT.md" in done.stdout
