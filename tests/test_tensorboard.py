"""TensorBoard events of the smoke experiment, read back and checked against the CSVs."""

from __future__ import annotations

import csv

import h5py
import numpy as np
import pytest

from tests.conftest import copy_smoke
from worldmodels.core import tensorboard
from worldmodels.core.artifacts import Layout, read_json
from worldmodels.core.tensorboard import read_events, read_scalars


def csv_rows(path) -> list[dict]:
    with open(path) as file:
        return list(csv.DictReader(file))


def assert_equal_to_csv(scalars: dict, rows: list[dict], step_key: str, prefix: str) -> None:
    """Every numeric cell of every row equals its scalar at the row's step (float32, as
    TensorBoard stores it)."""
    for row in rows:
        step = int(row[step_key])
        for key, cell in row.items():
            if key == step_key or cell == "":
                continue
            assert scalars[prefix + key][step] == np.float32(float(cell)), (key, step)


@pytest.fixture(scope="module")
def layout(smoke_run):
    root, _ = smoke_run
    return Layout(root / "data", root / "results", "smoke")


def test_v_writes_its_loss_terms_per_batch_and_epoch_and_a_reconstruction(layout):
    scalars = read_scalars(layout.vae)
    rows = csv_rows(layout.vae / "metrics.csv")
    assert_equal_to_csv(scalars, rows, "epoch", "V-epoch/")
    for term in ("loss", "reconstruction", "kl"):
        per_batch = scalars[f"V/{term}"]
        assert sorted(per_batch) == list(range(1, len(per_batch) + 1))
        # One epoch in smoke: its row is the mean of its batches.
        assert np.isclose(np.mean(list(per_batch.values())), float(rows[0][term]), rtol=1e-5)
    images = read_events(layout.vae, "image")["V/reconstructions"]
    assert sorted(images) == [1]
    width, height = (int(x) for x in images[1][:2])
    assert (width, height) == (8 * 64, 2 * 64)
    assert read_json(layout.vae / "manifest.json")["device"] == "CPU"


def test_the_gpu_helpers_are_harmless_without_a_gpu():
    from worldmodels.core.device import device_name, setup_gpu

    assert setup_gpu() == [] and device_name() == "CPU"


def test_m_writes_its_loss_terms_per_batch_and_epoch(layout):
    scalars = read_scalars(layout.rnn)
    rows = csv_rows(layout.rnn / "metrics.csv")
    assert_equal_to_csv(scalars, rows, "epoch", "M-epoch/")
    for term in ("mdn", "reward", "done", "loss"):
        assert sorted(scalars[f"M/{term}"]) == list(range(1, len(scalars[f"M/{term}"]) + 1))
    assert len(scalars["M/mdn"]) % len(rows) == 0


def test_c_writes_the_dream_figures_of_every_generation(layout):
    directory = layout.controller("dream")
    rows = csv_rows(directory / "history.csv")
    scalars = read_scalars(directory)
    assert_equal_to_csv(scalars, rows, "generation", "C/")
    assert {"C/best", "C/mean", "C/worst"} <= set(scalars)
    fitness = read_events(directory, "histogram")["C/fitness"]
    assert sorted(fitness) == [int(row["generation"]) for row in rows]


def test_evaluate_writes_its_returns_lengths_and_mean(layout):
    directory = layout.experiment / "evaluate"
    scalars, histograms = read_scalars(directory), read_events(directory, "histogram")
    for where in ("real", "dream"):
        result = read_json(layout.evaluation(where, "dream", "zh", "best"))
        assert len(result["lengths"]) == result["episodes"] == len(result["scores"])
        assert all(1 <= n <= result["config"]["max_steps"] for n in result["lengths"])
        name = f"{where}-dream-best"
        assert scalars[f"{name}/mean"] == {0: np.float32(result["mean"])}
        for key in ("returns", "lengths"):
            assert histograms[f"{name}/{key}"][0][:, 2].sum() == result["episodes"]


def test_a_resumed_training_run_appends_with_steps_counting_on(smoke_run, tmp_path):
    from worldmodels.config import RnnConfig
    from worldmodels.model.rnn import MDNRNN, train_rnn

    args = copy_smoke(smoke_run, tmp_path)
    layout = Layout(args[5], args[7], "smoke")
    manifest = read_json(layout.rnn / "manifest.json")
    before = read_scalars(layout.rnn)["M/loss"]
    config = RnnConfig(**dict(manifest["config"], epochs=manifest["config"]["epochs"] + 1))
    with h5py.File(layout.series) as series:
        model = MDNRNN(manifest["inputs"]["z_size"], config.hidden_size, config.mixtures)
        train_rnn(model, series, config, manifest["seed"], layout.rnn, progress=False)
    assert len(tensorboard.event_files(layout.rnn)) == 2
    after = read_scalars(layout.rnn)
    steps = sorted(after["M/loss"])
    assert steps == list(range(1, len(steps) + 1)) and len(steps) > len(before)
    assert all(after["M/loss"][step] == value for step, value in before.items())
    assert_equal_to_csv(after, csv_rows(layout.rnn / "metrics.csv"), "epoch", "M-epoch/")


def test_iterate_rounds_are_rewritten_to_match_rounds_csv(tmp_path):
    from worldmodels.stages.iterate import save_progress

    layout = Layout(tmp_path / "data", tmp_path / "results", "x")
    rounds = [{"round": 1, "collected": 2, "best_fitness": 3.5, "real_best": None}]
    for extra in ({}, {"round": 2, "collected": 2, "best_fitness": 4.25, "real_best": 1.5}):
        rounds = rounds + ([extra] if extra else [])
        save_progress(layout, {"rounds": rounds, "current": None})
    directory = layout.experiment / "iterate"
    scalars = read_scalars(directory)
    assert len(tensorboard.event_files(directory)) == 1
    assert scalars["iterate/best_fitness"] == {1: 3.5, 2: 4.25}
    assert scalars["iterate/real_best"] == {2: 1.5}


def test_tensorboards_own_reader_finds_the_scalars_and_an_experiment_reads_whole(layout):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = layout.rnn / "tensorboard"
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    assert "M/loss" in accumulator.Tags()["scalars"]
    ours = read_scalars(layout.rnn)["M/loss"]
    theirs = {event.step: event.value for event in accumulator.Scalars("M/loss")}
    assert theirs == ours and len(theirs) > 1
    whole = read_scalars(layout.experiment)
    assert whole["rnn/M/loss"] == ours and "vae/V/loss" in whole
    assert any(tag.startswith("controller-dream/") for tag in whole)
def test_tensorboards_own_reader_finds_the_scalars(layout):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tensorboard.events_dir(layout.rnn)))
    accumulator.Reload()
    ours = read_scalars(layout.rnn)
    assert set(accumulator.Tags()["scalars"]) == set(ours) and "M/loss" in ours
    steps = {event.step: event.value for event in accumulator.Scalars("M/loss")}
    assert steps == pytest.approx(ours["M/loss"])


def test_read_scalars_takes_an_experiment_folder(layout):
    everything = read_scalars(layout.experiment)
    assert everything["rnn/M/loss"] == read_scalars(layout.rnn)["M/loss"]
    assert everything["vae/V/loss"] == read_scalars(layout.vae)["V/loss"]
    assert not any(tag.startswith("M/") for tag in everything)
