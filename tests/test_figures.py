"""The figures' data, checked on the drawn matplotlib objects rather than by eye: whole-number
ticks on axes that count, legends beside the data, labelled axes, captions without "-0"."""

from __future__ import annotations

import numpy as np
import pytest

from worldmodels.core import figures


@pytest.fixture
def drawn(monkeypatch):
    """The figures a plotting function saves, kept open instead of written."""
    kept = []
    monkeypatch.setattr(figures, "_save", lambda figure, path: kept.append(figure) or path)
    yield kept
    figures._pyplot().close("all")


def history(generations: int) -> list[dict]:
    return [{"generation": g, "best": 10.0 * g, "mean": 5.0 * g, "worst": 0.0,
             "best_so_far": 10.0 * g, "real_best": None, "real_mean": None}
            for g in range(1, generations + 1)]


def assert_legend_beside_the_data(figure) -> None:
    """The legend's box does not overlap the axes' box (drawn in display coordinates)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    axis = figure.axes[0]
    legend = axis.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(axis.get_window_extent(renderer)), (legend, axis.bbox)


def test_generation_axes_have_whole_number_ticks_and_the_legend_outside(drawn):
    figures.plot_controller_history(history(2), "unused.png", "two generations")
    figure = drawn[0]
    figure.canvas.draw()
    ticks = figure.axes[0].get_xticks()
    assert len(ticks) >= 2 and np.all(ticks == np.round(ticks)), ticks
    assert_legend_beside_the_data(figure)


def test_the_selection_legend_is_not_over_its_data(drawn):
    rows = [{"kind": "mean", "generation": g, "mean": 100.0 * g, "std": 10.0,
             "returns": [1.0, 2.0], "dream": 50.0 * g} for g in (1, 2, 3)]
    rows.append({"kind": "best", "generation": 3, "mean": 250.0, "std": 5.0,
                 "returns": [1.0, 2.0]})
    figures.plot_selection(rows, 2, history(3), "unused.png", "select")
    ticks = drawn[0].axes[0].get_xticks()
    assert np.all(ticks == np.round(ticks)), ticks
    assert_legend_beside_the_data(drawn[0])


def test_epoch_axes_have_whole_number_ticks(drawn):
    rows = [{"epoch": e, "loss": 1.0 / e} for e in (1, 2)]
    figures.plot_metrics(rows, ["loss"], "unused.png", "V")
    drawn[0].canvas.draw()
    ticks = drawn[0].axes[0].get_xticks()
    assert np.all(ticks == np.round(ticks)), ticks


def test_the_fidelity_histogram_has_labelled_axes(drawn):
    from worldmodels.scoring.fidelity import plot_fidelity

    result = {"along_real_path": [{"real_return": 10.0 * i, "predicted_return": 12.0 * i,
                                   "predicted_return_paid_as_track": None} for i in range(3)],
              "open_loop": {"model": [], "horizons": [], "no_change": []},
              "dream": {"returns": [5.0, 50.0, 500.0]}}
    plot_fidelity(result, "unused.png")
    histogram = drawn[0].axes[2]
    assert histogram.get_xlabel() == "return" and "episodes" in histogram.get_ylabel()


def test_a_dream_gif_caption_never_reads_minus_zero():
    assert figures.step_caption(7, np.float32(-0.3)) == "t=7 R=0"
    assert figures.step_caption(8, -12.6) == "t=8 R=-13"


def test_each_series_of_c_history_is_drawn_once(drawn):
    rows = [dict(row, recheck=9.0 * row["generation"], best_so_far=9.0 * row["generation"],
                 real_best=3.0 * row["generation"] if row["generation"] % 2 == 0 else "",
                 real_mean=2.0 * row["generation"] if row["generation"] % 2 == 0 else "")
            for row in history(4)]
    figures.plot_controller_history(rows, "unused.png", "four generations")
    axis = drawn[0].axes[0]
    labels = [line.get_label() for line in axis.get_lines()]
    assert labels == ["dream fitness: population mean", "dream fitness: best so far",
                      "real env: best so far", "real env: CMA-ES mean"]
    assert len(axis.collections) == 1  # the band of candidates, worst to best
    assert len(set(axis.get_legend_handles_labels()[1])) == 5
    figures.plot_selection([{"kind": "mean", "generation": 2, "mean": 1.0, "std": 0.0,
                             "returns": [1.0]}], 0, rows, "unused.png", "select")
    means = [line for line in drawn[1].axes[0].get_lines()
             if line.get_label() == "dream fitness: population mean"]
    assert len(means) == 1 and list(means[0].get_ydata()) == [r["mean"] for r in rows]
