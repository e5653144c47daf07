"""compare, report and show on the smoke preset, real checks while C evolves in the dream, and
pipeline --variants. Everything runs for real (env, V, M, CMA-ES) at a tiny scale."""

from __future__ import annotations

import csv
import json
import re
import shutil

import imageio.v2 as imageio
import numpy as np
import pytest

from tests.conftest import common, copy_smoke, invoke
from worldmodels.config import get_preset, override
from worldmodels.core.artifacts import Layout, read_json
from worldmodels.data.collect import episode_seeds
from worldmodels.scoring.scorers import EVALUATE_STAGE_KEY

TEMPERATURES = (0.5, 1.0, 1.3)
EPISODES = 3
# Every number the report may show without a stage having measured it: the paper's tables
# (CarRacing and DoomTakeCover), its 100 tracks, "solved" at 900, the 40 hidden units, its year.
PAPER_NUMBERS = {
    "343", "18", "591", "45", "652", "10", "632", "251", "40", "788", "141", "906", "21",
    "100", "900", "2018", "0.10", "2086", "140", "193", "58", "0.50", "2060", "277", "196", "50",
    "1.00", "1145", "690", "868", "511", "1.15", "918", "546", "1092", "556", "1.30", "732",
    "269", "753", "139",
}


@pytest.fixture(scope="module")
def drawn(smoke_run):
    """compare (3 temperatures, 3 episodes) and show run once on the shared smoke experiment."""
    root, _ = smoke_run
    temperatures = ",".join(f"{t:g}" for t in TEMPERATURES)
    outputs = {
        "compare": invoke("compare", *common(root), "--temperatures", temperatures,
                          "--episodes", EPISODES).output,
        "show": invoke("show", *common(root)).output,
    }
    return root, Layout(root / "data", root / "results", "smoke"), outputs


def test_compare_writes_the_table_and_runs_the_real_env_once(drawn):
    root, layout, outputs = drawn
    folder = layout.experiment / "compare"
    for ext in ("json", "csv", "md", "png"):
        assert (folder / f"dream-best.{ext}").stat().st_size > 100, ext
    assert not (folder / "dream-best.partial.json").exists()
    result = read_json(folder / "dream-best.json")
    rows = result["rows"]
    assert [row["temperature"] for row in rows] == list(TEMPERATURES)
    real = result["real"]
    assert real["episodes"] == EPISODES == len(real["scores"])
    assert real["seeds"] == episode_seeds(0, EPISODES, EVALUATE_STAGE_KEY)
    for row in rows:  # one real figure, the same in every row
        assert (row["real_mean"], row["real_std"]) == (real["mean"], real["std"])
        assert row["episodes"] == EPISODES
        assert len(result["dream"][f"{row['temperature']:g}"]["scores"]) == EPISODES
    # The real episodes are evaluate's: the same tracks and noise give the same scores.
    evaluated = read_json(layout.evaluations / "real-dream-best.json")
    assert real["scores"][: evaluated["episodes"]] == evaluated["scores"]

    with open(folder / "dream-best.csv", newline="") as file:
        table = list(csv.DictReader(file))
    assert list(table[0]) == ["temperature", "dream_mean", "dream_std", "dream_mean_length",
                              "dream_median_length", "real_mean", "real_std", "episodes"]
    assert len(table) == len(TEMPERATURES)
    markdown = (folder / "dream-best.md").read_text()
    assert "| dream temperature τ | dream mean ± std |" in markdown
    real_cell = f"{real['mean']:.1f} ± {real['std']:.1f}"
    lines = [line for line in markdown.splitlines() if line.startswith("| ")][1:]
    assert len(lines) == len(TEMPERATURES)
    assert all(real_cell in line and line.endswith(f"| {EPISODES} |") for line in lines)
    assert "[^real-dream-best]:" in markdown and "does not depend on τ" in markdown
    assert real_cell in outputs["compare"]

    again = invoke("compare", *common(root), "--temperatures", "0.5,1,1.3", "--episodes",
                   EPISODES).output
    assert "complete" in again and "--force" in again


def test_compare_without_a_controller_is_a_one_line_error(drawn):
    root, _, _ = drawn
    result = invoke("compare", *common(root), "--variant", "z", expect_ok=False)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "train-controller --where dream --variant z" in result.output.strip().splitlines()[-1]
    result = invoke("compare", *common(root), "--temperatures", "1,-2", expect_ok=False)
    assert result.exit_code != 0 and "--temperatures" in result.output


def test_show_draws_readable_figures(drawn):
    _, layout, outputs = drawn
    figures = layout.experiment / "figures"
    for name in ("vae-reconstructions", "vae-traversal", "vae-training", "rnn-open-loop",
                 "rnn-training", "controller-dream-training"):
        path = figures / f"{name}.png"
        assert path.stat().st_size > 10_000, name
        image = imageio.imread(path)
        assert image.ndim == 3 and image.shape[2] in (3, 4) and min(image.shape[:2]) >= 200
        assert image[..., :3].std() > 5, f"{name} is blank"
    frames = imageio.mimread(figures / "dream-dream-best.gif")
    assert len(frames) >= 2  # the dream's first frame and at least one step
    assert all(frame.shape[:2] == (64 * 2 + 14, 64 * 2) for frame in frames)
    record = read_json(figures / "dream-dream-best.json")
    assert record["dreams"] == len(record["lengths"]) == 16
    assert record["chosen_length"] == max(record["lengths"])
    assert len(frames) == min(record["chosen_length"] + 1, 201) or \
        record["frames_shown_every"] == 2
    assert "dream GIF: the longest of 16 dreams at τ = 1.15" in outputs["show"]


def test_report_shows_only_measured_numbers(drawn):
    root, layout, _ = drawn
    output = invoke("report", *common(root)).output
    report = (layout.experiment / "REPORT.md").read_text()
    assert "REPORT.md" in output
    # The variant never trained in the smoke run is "not run", with the commands that run it.
    z_row = next(line for line in report.splitlines() if line.startswith("| V only: the"))
    assert "not run: `worldmodels train-controller --preset smoke --name smoke --variant z`" \
        in z_row
    real = read_json(layout.evaluations / "real-dream-best.json")
    zh_row = next(line for line in report.splitlines() if line.startswith("| Full world"))
    assert f"{real['mean']:.1f} ± {real['std']:.1f} ({real['episodes']} episodes)" in zh_row
    assert "906 ± 21" in zh_row
    for link in re.findall(r"\]\(([^)]+)\)", report):  # relative links that resolve
        assert (layout.experiment / link).exists(), link
    assert "figures/rnn-open-loop.png" in report and "compare/dream-best.png" in report

    measured = _measured_numbers(layout.experiment)
    for token in re.findall(r"[0-9][0-9,]*(?:\.[0-9]+)?", report):
        number = token.replace(",", "")
        assert number in PAPER_NUMBERS or number in measured, \
            f"{token} in REPORT.md was not measured by any stage"


def _measured_numbers(folder) -> set[str]:
    """Every number in the JSON and CSV files under ``folder``, as shown with 0 to 3
    decimals."""
    values = []

    def walk(value):
        if isinstance(value, bool):
            return
        if isinstance(value, (int, float)):
            values.append(abs(float(value)))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for path in folder.rglob("*.json"):
        walk(json.loads(path.read_text()))
    for path in folder.rglob("*.csv"):
        with open(path, newline="") as file:
            for row in csv.DictReader(file):
                values += [abs(float(v)) for v in row.values() if v not in ("", None)]
    return {f"{v:.{d}f}" for v in values for d in range(4)}


def test_real_checks_during_dream_training(smoke_run, tmp_path):
    root, _ = smoke_run
    shutil.copytree(root / "results" / "smoke", tmp_path / "smoke",
                    ignore=shutil.ignore_patterns("controller-*", "evaluate", "compare",
                                                  "figures"))
    output = invoke("train-controller", *common(root)[:6], "--results-dir", tmp_path,
                    "--population", 4, "--trials", 1, "--generations", 5, "--max-steps", 20,
                    "--real-every", 2, "--real-episodes", 1).output
    assert "real checks: best so far and mean, 1 episodes each, every 2 generations" in output
    directory = tmp_path / "smoke" / "controller-dream"
    with open(directory / "history.csv", newline="") as file:
        history = list(csv.DictReader(file))
    assert list(history[0])[-2:] == ["real_best", "real_mean"]
    checked = [int(row["generation"]) for row in history if row["real_best"]]
    assert checked == [2, 4, 5]  # every 2 generations, and the last
    assert all(row["real_mean"] for row in history if row["real_best"])
    assert "real env at generation 5" in output.splitlines()[-1]
    assert (directory / "history.png").stat().st_size > 10_000


def test_real_checks_keep_the_resumed_trajectory(smoke_run, tmp_path):
    """A run resumed from its state.pkl gives the history of an uninterrupted one, real
    checks included (the checks draw nothing from CMA-ES's generator)."""
    from worldmodels.config import DreamSpec
    from worldmodels.core.workers import LocalBackend
    from worldmodels.model.controller import Controller
    from worldmodels.model.evolution import evolve
    from worldmodels.model.world import load_world
    from worldmodels.scoring.scorers import DreamScorer, RealScorer

    root, _ = smoke_run
    world = load_world(Layout(root / "data", root / "results", "smoke"), need_vae=True)
    spec = Controller("z", world.z_size, world.hidden_size)
    config = override(get_preset("smoke").controller, population=4, trials=1, max_steps=20,
                      real_every=2, real_episodes=1, generations=4)
    with LocalBackend(2) as backend:
        real = RealScorer(world, backend, 0, config.max_steps, controller=spec)
        dream = DreamScorer(world, DreamSpec(config.temperature, max_steps=config.max_steps), 0,
                            spec)

        def run(directory, generations):
            directory.mkdir(exist_ok=True)
            return evolve(lambda c, g: dream.fitness(c, g, config.trials), spec.param_count,
                          override(config, generations=generations), 0, directory, False,
                          check_fn=lambda best, mean: real.check(best, mean, 1))

        whole = run(tmp_path / "whole", 4)
        run(tmp_path / "resumed", 2)
        resumed = run(tmp_path / "resumed", 4)
    assert resumed == whole
    assert [row["real_best"] != "" for row in whole] == [False, True, False, True]
    np.testing.assert_array_equal(np.load(tmp_path / "whole" / "best.npy"),
                                  np.load(tmp_path / "resumed" / "best.npy"))


def test_pipeline_runs_each_variant_and_writes_the_report(smoke_run, tmp_path):
    root, _ = smoke_run
    args = copy_smoke(smoke_run, tmp_path, ("data", "results"))  # iterate adds episodes
    for pattern in ("controller-*", "iterate", "evaluate", "compare", "figures", "REPORT.md",
                    "pipeline.json"):
        for path in (tmp_path / "results" / "smoke").glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    output = invoke("pipeline", *args, "--variants", "zh,z").output
    # collect, train-vae, encode, train-rnn; zh's controller is trained (and iterated) once,
    # before the variants' turn, and not visited again (nor said to need --force)
    assert output.count("complete, skipped") == 4
    assert output.splitlines().count("== train-controller") == 1
    assert "--force would start this stage over" not in output
    assert "== iterate: complete" not in output
    layout = Layout(tmp_path / "data", tmp_path / "results", "smoke")
    for variant in ("zh", "z"):
        assert (layout.controller("dream", variant) / "best.npy").exists()
    assert read_json(layout.evaluations / "real-dream-z-best.json")["variant"] == "z"
    timings = read_json(layout.experiment / "pipeline.json")
    assert {"train-controller", "evaluate", "train-controller-z", "evaluate-z"} <= set(timings)
    report = (layout.experiment / "REPORT.md").read_text()
    z_row = next(line for line in report.splitlines() if line.startswith("| V only: the"))
    z_scores = read_json(layout.evaluations / "real-dream-z-best.json")
    assert f"{z_scores['mean']:.1f} ± {z_scores['std']:.1f}" in z_row
    hidden = next(line for line in report.splitlines() if "hidden layer" in line)
    assert "not run" in hidden
    assert "pipeline (smoke): done" in output.splitlines()[-1]
    assert "== round 1/1: controller" in output
    again = invoke("pipeline", *args, "--variants", "zh,z").output
    assert again.count("complete, skipped") == 11  # every stage, fidelity and resolution included
    assert "pipeline (smoke): done" in again.splitlines()[-1]
    result = invoke("pipeline", *common(root), "--variants", "zh,x", expect_ok=False)
    assert result.exit_code != 0 and "--variants" in result.output
