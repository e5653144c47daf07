"""The benchmark's measurements at a tiny scale (the figures themselves are machine-dependent;
these check that each measurement runs the real thing and reports a consistent row), and the
machinery the performance work added: real episodes on worker processes and the reader
thread."""

import json

import numpy as np
import pytest

from tests.conftest import invoke
from worldmodels.data.prefetch import prefetch
from worldmodels_bench import data, dream, real


def _check(row):
    assert row.figure > 0 and row.baseline > 0
    assert np.isclose(row.ratio, row.figure / row.baseline)
    low, high = row.goal.split(" ")[0], float(row.goal.split(" ")[1])
    assert row.met == (row.ratio >= high if low == ">=" else row.ratio <= high)


def test_bench_startup_through_the_cli_writes_bench_json(tmp_path):
    output = invoke("bench", "--targets", "startup", "--results-dir", tmp_path).output
    payload = json.loads((tmp_path / "bench.json").read_text())
    assert [row["target"] for row in payload["rows"]] == ["startup: slowest --help (s)"]
    assert "| startup: slowest --help (s) |" in output and payload["machine"]


def test_bench_rejects_unknown_targets(tmp_path):
    result = invoke("bench", "--targets", "warp", "--results-dir", tmp_path, expect_ok=False)
    assert result.exit_code != 0 and "unknown target" in result.output
    assert not (tmp_path / "bench.json").exists()


def test_bench_collect_stream_and_memory_on_tiny_runs(tmp_path):
    rows = data.bench_collect(tmp_path, workers=2, episodes=2, max_steps=30, log=print)
    rows += data.bench_stream(tmp_path, log=print, batches=10, rnn_batches=3)
    rows += data.bench_memory(tmp_path, episodes=2, copies=2, log=print)
    assert len(rows) == 4
    for row in rows:
        _check(row)


def test_bench_of_takecover_on_tiny_runs(tmp_path):
    rows = data.bench_collect(tmp_path, workers=2, episodes=2, max_steps=40, log=print,
                               env_id="VizdoomTakeCover-v1", policy="repeat")
    rows += dream.bench_dream(2, 2, 20, 0, log=print, env_id="VizdoomTakeCover-v1")
    assert [row.target.split(":")[0] for row in rows] == ["doom-collect", "doom-dream"]
    for row in rows:
        _check(row)


def test_bench_dream_and_real_on_tiny_runs():
    rows = dream.bench_dream(population=2, trials=2, steps=30, naive_steps=30, log=print)
    rows += real.bench_real(workers=2, episodes=3, max_steps=30, log=print)
    assert len(rows) == 3
    for row in rows:
        _check(row)


def test_bench_ray_collect_on_a_tiny_run(tmp_path):
    pytest.importorskip("ray")
    rows = data.bench_ray_collect(tmp_path, workers=2, episodes=2, max_steps=15, log=print)
    assert len(rows) == 1 and rows[0].unit == "frames/s"
    _check(rows[0])
    for backend in ("local", "ray"):  # both collected every episode
        assert len(list((tmp_path / "data" / f"bench-{backend}" / "rollouts").glob("*.h5"))) == 2


def test_real_episodes_do_not_depend_on_the_workers_or_on_resuming():
    from worldmodels.core.workers import LocalBackend
    from worldmodels.model.agent import AgentSetup, run_real_episodes
    from worldmodels.model.controller import Controller

    spec = Controller("zh", 8, 16)
    setup = AgentSetup.from_world(real.untrained_world(8, 16, 2, "CarRacing-v3"), spec, 25,
                                  noise_seed=7)
    params = np.random.default_rng(3).normal(0, 0.5, (6, spec.param_count)).astype(np.float32)
    seeds = [21, 22, 23, 24, 25, 26]
    scores, actions = [], []
    for workers in (1, 2):
        recorded = {}
        with LocalBackend(workers) as backend:
            scores.append(run_real_episodes(backend, setup, params, seeds, progress=False,
                                            record="actions",
                                            on_recorded=recorded.__setitem__))
            # Resumed with episodes 1 and 4 done: the others score as in a whole run.
            seen = {}
            resumed = run_real_episodes(backend, setup, params, seeds, progress=False,
                                        done={1: -5.0, 4: -6.0}, on_episode=seen.__setitem__)
        actions.append(recorded)
    np.testing.assert_array_equal(scores[1], scores[0])
    assert sorted(seen) == [0, 2, 3, 5]
    np.testing.assert_array_equal(resumed[[0, 2, 3, 5]], scores[0][[0, 2, 3, 5]])
    assert resumed[1] == -5.0 and resumed[4] == -6.0
    assert all(len(actions[0][e]) == 25 for e in range(6))
    for e in range(6):
        np.testing.assert_array_equal(actions[1][e], actions[0][e])


def test_prefetch_yields_everything_in_order_and_raises_the_producers_error():
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("disk on fire")

    reader = prefetch(failing())
    assert next(reader) == 1
    with pytest.raises(ValueError, match="disk on fire"):
        next(reader)
