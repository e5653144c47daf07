"""The dream that pays as a track pays, and `worldmodels fidelity` (M against reality)."""

import json

import numpy as np
import pytest

from tests.conftest import copy_smoke, invoke
from worldmodels.config import DreamSpec
from worldmodels.envs.carracing import TRACK_TOTAL, pay_as_track, tile_value
from worldmodels.model.controller import param_count
from worldmodels.model.dream import make_dream, run_dream
from worldmodels.model.evolution import load_state
from worldmodels.model.rnn import MDNRNN


def test_pay_as_track_pays_at_most_a_tile_a_step_and_a_thousand_in_all():
    paid, total = 0.0, 0.0
    for reward in [50.0] * 400:  # a reward head that pays 50 at every step
        reward, paid = pay_as_track(np.float64(reward), paid, 3.0)
        total += reward
    assert paid == TRACK_TOTAL
    np.testing.assert_allclose(total, 1000.0 - 0.1 * 400)
    # Losses (leaving the playfield, -100) and the frame's cost stay as the head predicts.
    np.testing.assert_allclose(pay_as_track(np.float64(-100.1), 0.0, 3.0), (-100.1, 0.0))
    np.testing.assert_allclose(pay_as_track(np.float64(-0.1), 0.0, 3.0), (-0.1, 0.0))
    np.testing.assert_allclose(pay_as_track(np.float64(1.0), 0.0, 3.0), (1.0, 1.1))


def test_a_dream_that_pays_as_a_track_ends_when_its_tiles_are_paid():
    rnn = MDNRNN(4, 16, 2)
    rnn.done_head.bias.assign([-30.0])  # never ends by itself
    rnn.reward_head.bias.assign([50.0])  # M pays 50 a step: the exploit the option prevents
    params = np.zeros((3, param_count(20)), np.float32)
    z0 = np.zeros((3, 4), np.float32)
    plain, plain_lengths = run_dream(make_dream(rnn), params, z0, 1.0, 500, seed=1)
    assert (plain_lengths == 500).all() and (plain > 20_000).all()
    paying = make_dream(rnn, spec=DreamSpec(pay_as_track=True), tile_value=4.0)
    returns, lengths = run_dream(paying, params, z0, 1.0, 500, seed=1)
    assert (lengths == 250).all()  # 1,000 of tiles at 4 a step, then the lap is done
    np.testing.assert_allclose(returns, 1000 - 0.1 * 250, rtol=1e-5)


def test_tile_value_is_one_tile_of_the_collected_tracks():
    rewards = np.full((3, 6), -0.1, np.float32)
    rewards[0, 2] = 1000 / 250 - 0.1
    rewards[0, 3] = 2 * 1000 / 250 - 0.1  # two tiles in one step
    rewards[1, 1] = 1000 / 300 - 0.1
    rewards[2, 5] = 1000 / 300 - 0.1  # past the episode's length: not read
    value = tile_value(rewards, np.array([6, 6, 4]))
    np.testing.assert_allclose(value, np.median([4.0, 1000 / 300]), rtol=1e-5)


def test_fidelity_measures_m_along_real_episodes(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)
    output = invoke("fidelity", *args).output
    path = tmp_path / "results" / "smoke" / "fidelity" / "dream-best.json"
    assert f"wrote {path}" in output and path.with_suffix(".png").stat().st_size > 10_000
    result = json.loads(path.read_text())
    episodes, dreams = 2, 4  # the smoke preset's
    assert len(result["real"]["returns"]) == episodes == len(result["along_real_path"])
    assert len(result["dream"]["returns"]) == dreams
    summary = result["summary"]
    np.testing.assert_allclose(summary["real_mean"], np.mean(result["real"]["returns"]))
    for path_figures, real in zip(result["along_real_path"], result["real"]["returns"]):
        np.testing.assert_allclose(path_figures["real_return"], real, rtol=1e-5)
        assert path_figures["reward_mae"] >= 0 and 0 <= path_figures["dream_ends_early"] <= 1
    assert result["open_loop"]["horizons"] == [1, 5] and len(result["open_loop"]["model"]) == 2
    assert isinstance(result["endings_on_data"], dict)  # 60-step tracks seldom end
    # The env's constant behaviours, in the dream and on the first real track.
    fixed = result["fixed_actions"]
    assert set(fixed) == {"no gas", "straight, full gas", "hard left, full gas",
                          "hard right, full gas"}
    assert all(f["tracks"] == 1 for f in fixed.values())
    # standing still: 60 steps at -0.1 each, and no tile but the one it starts on (< 10 a tile)
    assert -0.1 * 60 <= fixed["no gas"]["real"] < 10 - 0.1 * 60
    assert "fixed actions, dream / real: no gas" in output
    moves = summary["real_action_mean"]
    assert set(moves) == {"steer", "gas", "brake"} and 0 <= moves["gas"] <= 1
    assert "the controller's mean action on the real tracks: steer" in output
    # The same measurement of the same controller is not redone.
    before = path.stat().st_mtime_ns
    assert "complete" in invoke("fidelity", *args).output
    assert path.stat().st_mtime_ns == before
    # Another measurement of the same controller is not written over it unasked.
    other = invoke("fidelity", *args, "--dream-episodes", 3, expect_ok=False)
    assert other.exit_code != 0 and "add --force" in other.output
    assert path.stat().st_mtime_ns == before
    # A measurement of an earlier controller is replaced, and the command says so; this one
    # also ranks the population CMA-ES would score next, in the dream and on a real track.
    invoke("train-controller", *args, "--generations", 1, "--force")
    output = invoke("fidelity", *args, "--candidate-episodes", 1).output
    assert f"replacing {path}: it scored an earlier run of the controller" in output
    results = tmp_path / "results" / "smoke"
    controller = json.loads((results / "controller-dream" / "manifest.json").read_text())
    result = json.loads(path.read_text())
    assert result["controller_run_id"] == controller["run_id"]
    assert "the dream ranks the next candidates with rank correlation" in output
    ranking = result["ranking"]
    population = load_state(results / "controller-dream").settings["population"]
    assert ranking["candidates"] == population == len(ranking["dream"]) == len(ranking["real"])
    assert len(ranking["tracks"]) == 1 and ranking["trials"] == 2  # the smoke preset's trials
    assert -1.0 <= ranking["rank_correlation"] <= 1.0
    assert ranking["real_of_dream_choice"] == ranking["real"][int(np.argmax(ranking["dream"]))]
    assert max(ranking["real"]) == ranking["real_best"]
    invoke("report", *args)
    report = (results / "REPORT.md").read_text()
    assert "rank correlation" in report and "| straight, full gas |" in report


def test_compare_sweeps_the_dream_dropout_at_the_trained_temperature(smoke_run, tmp_path):
    args = copy_smoke(smoke_run, tmp_path)
    invoke("compare", *args, "--temperatures", "1", "--dropouts", "0,0.3", "--force")
    path = tmp_path / "results" / "smoke" / "compare" / "dream-best.json"
    result = json.loads(path.read_text())
    assert [row["dropout"] for row in result["dropout_rows"]] == [0.0, 0.3]
    assert [row["temperature"] for row in result["rows"]] == [1.0]
    for label in ("dropout=0", "dropout=0.3"):
        assert len(result["dream"][label]["scores"]) == 2
    assert "| dream dropout (τ = 1.15) |" in path.with_suffix(".md").read_text()
    bad = invoke("compare", *args, "--dropouts", "0,1", expect_ok=False)
    assert bad.exit_code != 0 and "--dropouts" in bad.output


def test_a_dropout_mask_kept_per_dream_is_seeded_and_differs_from_fresh_masks():
    rnn = MDNRNN(4, 16, 2, dropout=0.3)
    rnn.done_head.bias.assign([-30.0])
    rnn.reward_head.kernel.assign(np.ones((16, 1), np.float32))  # reward reads every unit
    params = np.random.default_rng(0).normal(size=(6, param_count(20)), scale=0.1)
    z0 = np.zeros((6, 4), np.float32)
    kept = make_dream(rnn, spec=DreamSpec(dropout=0.3, dropout_mask="dream"))
    first = run_dream(kept, params.astype(np.float32), z0, 1.0, 30, seed=3)
    again = run_dream(kept, params.astype(np.float32), z0, 1.0, 30, seed=3)
    np.testing.assert_array_equal(first[0], again[0])
    fresh = run_dream(make_dream(rnn, spec=DreamSpec(dropout=0.3)), params.astype(np.float32),
                      z0, 1.0, 30, seed=3)
    assert not np.allclose(first[0], fresh[0])
    off = run_dream(make_dream(rnn, spec=DreamSpec(dropout=0.0, dropout_mask="dream")),
                    params.astype(np.float32), z0, 1.0, 30, seed=3)
    plain = run_dream(make_dream(rnn), params.astype(np.float32), z0, 1.0, 30, seed=3)
    np.testing.assert_array_equal(off[0], plain[0])


def test_spearman_ranks():
    from worldmodels.scoring.fidelity import spearman

    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [5, 5, 5, 5]) == 0.0
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)


def test_endings_are_read_along_the_data_as_the_dream_reads_done(tmp_path):
    import h5py

    from worldmodels.data.store import SeriesWriter
    from worldmodels.scoring.fidelity import read_endings

    writer = SeriesWriter(tmp_path / "series.h5", 3, 10, 4, vae_run_id="v", action_size=1)
    rng = np.random.default_rng(0)
    for index, (T, ends) in enumerate(((10, True), (6, True), (10, False))):
        terminations = np.zeros(T)
        terminations[-1] = ends  # the last two: a death after 6 steps, a truncation
        writer.write(index, rng.normal(size=(T + 1, 4)), rng.normal(size=(T + 1, 4)),
                     rng.choice([-1.0, 0.0, 1.0], size=(T, 1)), np.ones(T), terminations)
    writer.close()
    rnn = MDNRNN(4, 8, 2, action_size=1)
    weights = rnn.done_head.get_weights()
    with h5py.File(tmp_path / "series.h5") as series:
        for bias, foreseen in ((5.0, 1.0), (-5.0, 0.0)):
            rnn.done_head.set_weights([np.zeros_like(weights[0]),
                                       np.full_like(weights[1], bias)])
            read = read_endings(rnn, series, [0, 1, 2], threshold=0.5, weight=10.0)
            assert read["episodes"] == 3 and read["endings"] == 2  # the truncation is none
            assert read["foreseen"] == foreseen == read["earlier"]
            # p = sigmoid(bias) with the class weight 10 taken back out, over 10 and 6 steps
            calibrated = 1 / (1 + np.exp(-(bias - np.log(10.0))))
            np.testing.assert_allclose(read["expected_endings"], 8 * calibrated, rtol=1e-5)
        drawn = read_endings(rnn, series, [0, 1], threshold=None, weight=10.0)
        np.testing.assert_allclose(drawn["foreseen"], 1 / (1 + np.exp(5.0)), rtol=1e-5)
        assert read_endings(rnn, series, [2], threshold=0.5, weight=10.0) is None
        # episodes of different lengths read in one padded batch read as each alone
        rnn.done_head.set_weights([rng.normal(size=weights[0].shape).astype(np.float32),
                                   weights[1]])
        together = read_endings(rnn, series, [0, 1], threshold=None, weight=10.0)
        alone = [read_endings(rnn, series, [i], threshold=None, weight=10.0) for i in (0, 1)]
        for key in ("foreseen", "earlier", "expected_endings"):
            assert together[key] == pytest.approx(np.mean([a[key] for a in alone]), rel=1e-5)
    from worldmodels.stages.score import _endings_line
    from worldmodels.views.report import _endings_table

    result = {"summary": {"endings_foreseen": 0.25, "endings_on_data": {"iterate": 0.0}},
              "real": {"returns": [1, 2, 3, 4]}, "endings_on_data": {"iterate": read}}
    table = "\n".join(_endings_table("dream-best", result))
    assert "| the controller's real episodes | 4 | 25 % |" in table
    assert "| iterate's episodes | 2 | 0 % | 0 % | 0.01 |" in table
    assert _endings_line(result["summary"]).endswith(
        "the controller's real episodes 25 %; iterate's episodes 0 %")


def test_held_out_reads_m_along_episodes_it_never_trained_on(smoke_run, tmp_path):
    from worldmodels.core.artifacts import Layout
    from worldmodels.data.store import list_episodes, read_episode
    from worldmodels.model.world import load_world
    from worldmodels.scoring.fidelity import _encode

    args = copy_smoke(smoke_run, tmp_path, parts=("data", "results"))
    hold = ["--preset", "smoke", "--name", "hold", "--data-dir", tmp_path / "data",
            "--results-dir", tmp_path / "results"]
    invoke("collect", *hold, "--seed", 5, "--episodes", 1, "--max-steps", 50)
    output = invoke("fidelity", *args, "--held-out", "hold").output
    path = tmp_path / "results" / "smoke" / "fidelity" / "held-out-hold.json"
    assert f"wrote {path}" in output and "1 held-out episodes: MDN NLL" in output
    result = json.loads(path.read_text())
    assert result["episodes"] == 1 and result["steps"] == 50  # seldom ended in 50 steps
    assert result["open_loop"]["horizons"] == [1, 5] and len(result["open_loop"]["model"]) == 2
    assert result["reward_mae"] >= 0 and 0 <= result["dream_ends_early"] <= 1
    # The NLL is the mixture's, per dimension and step, along the episode's next z (NumPy).
    world = load_world(Layout(tmp_path / "data", tmp_path / "results", "smoke"))
    episode = read_episode(list_episodes(tmp_path / "data" / "hold" / "rollouts")[0])
    z = _encode(world.vae, episode["frames"])
    predicted, _ = world.rnn(np.concatenate([z[:-1], episode["actions"]], -1)[None])
    logits, mu, logstd = (predicted[k].numpy()[0].astype(np.float64)
                          for k in ("logits", "mu", "logstd"))
    log_weights = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    target = z[1:, :, None].astype(np.float64)
    log_normal = (-0.5 * np.square((target - mu) / np.exp(logstd)) - logstd
                  - 0.5 * np.log(2 * np.pi))
    nll = -np.log(np.exp(log_weights + log_normal).sum(-1)).mean()
    np.testing.assert_allclose(result["mdn_nll"], nll, rtol=1e-4)
    # Kept while V, M and the episodes are the same.
    before = path.stat().st_mtime_ns
    assert "complete" in invoke("fidelity", *args, "--held-out", "hold").output
    assert path.stat().st_mtime_ns == before
    # M's own data, the same seed as M's data, or a controller's options: one line each.
    for extra, said in ((["--held-out", "smoke"], "the experiment's own data"),
                        (["--held-out", "hold", "--variant", "z"], "--variant")):
        refused = invoke("fidelity", *args, *extra, expect_ok=False)
        assert refused.exit_code != 0 and said in refused.output
        assert len(refused.output.strip().splitlines()) == 1
    invoke("collect", *hold[:3], "same", *hold[4:], "--seed", 0, "--episodes", 1)
    refused = invoke("fidelity", *args, "--held-out", "same", expect_ok=False)
    assert refused.exit_code != 0 and "as M's own data" in refused.output
    assert path.stat().st_mtime_ns == before
