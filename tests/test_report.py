"""report: written from files only; parts not run are named with their commands."""

from __future__ import annotations

import pytest

from worldmodels import stages
from worldmodels.artifacts import Layout
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
