"""`worldmodels enjoy` on the smoke experiment: a playable MP4 and the return `evaluate` gives."""

from __future__ import annotations

import imageio.v2 as imageio

from tests.conftest import copy_smoke, invoke
from worldmodels.core.artifacts import Layout, read_json
from worldmodels.views.enjoy import PANEL, WIDTH


def test_enjoy_films_evaluates_track_and_scores_it_as_evaluate(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)
    layout = Layout(args[5], args[7], "smoke")
    scores = read_json(layout.evaluation("real", "dream", "zh", "best"))
    output = invoke("enjoy", *args, "--episode-index", 1, "--gif").output
    assert "wrote" in output.splitlines()[0]
    record = read_json(layout.experiment / "enjoy" / "dream-best-track1.json")
    assert record["seed"] == scores["seeds"][1] and record["task"] == [0, 1]
    # The same agent step on the same batch shapes as evaluate's workers: the same floats.
    assert record["return"] == scores["scores"][1]
    assert record["length"] == scores["lengths"][1]
    with imageio.get_reader(record["video"]) as reader:
        assert reader.count_frames() == record["length"] + 1 == record["frames"]
        assert reader.get_data(0).shape == (PANEL + 32, WIDTH, 3)
        assert reader.get_meta_data()["fps"] == 50
    gif = imageio.mimread(record["gif"])
    assert len(gif) == -(-record["frames"] // 2)


def test_enjoy_refuses_a_track_evaluate_does_not_run(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)
    result = invoke("enjoy", *args, "--episode-index", 2, expect_ok=False)
    assert result.exit_code != 0
    assert "tracks 0 to 1" in result.output.splitlines()[-1]
