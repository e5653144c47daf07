import numpy as np
import pytest
import tensorflow as tf

from worldmodels.config import DreamSpec
from worldmodels.model.controller import param_count
from worldmodels.model.dream import initial_latents, make_dream, run_dream, sample_next_z
from worldmodels.model.evolution import Evolution
from worldmodels.model.rnn import MDNRNN


def _predictions(B=2000, Z=3, K=2):
    logits = np.tile(np.array([0.0, np.log(3.0)], np.float32), (B, Z, 1))  # p = 0.25, 0.75
    mu = np.tile(np.array([-5.0, 5.0], np.float32), (B, Z, 1))
    logstd = np.full((B, Z, K), np.log(0.5), np.float32)
    return {"logits": logits, "mu": mu, "logstd": logstd}


def test_sampling_follows_the_mixture_and_the_temperature():
    seed = tf.constant([1, 2], tf.int64)
    z = sample_next_z(_predictions(), tf.constant(1.0), seed).numpy()
    assert abs((z > 0).mean() - 0.75) < 0.03
    np.testing.assert_allclose(z[z > 0].std(), 0.5, rtol=0.1)
    # Low temperature: the likelier component wins and the noise shrinks by sqrt(tau).
    cold = sample_next_z(_predictions(), tf.constant(0.1), seed).numpy()
    assert (cold > 0).mean() > 0.99
    np.testing.assert_allclose(cold[cold > 0].std(), 0.5 * np.sqrt(0.1), rtol=0.1)


def test_dream_is_deterministic_and_respects_max_steps():
    rnn = MDNRNN(4, 16, 2)
    rnn.done_head.bias.assign([-30.0])  # never ends by itself
    dream = make_dream(rnn)
    rng = np.random.default_rng(0)
    params = rng.normal(size=(6, param_count(20)), scale=0.1).astype(np.float32)
    z0, picks = initial_latents(rng.normal(size=(3, 4)), np.zeros((3, 4)), 6, rng)
    assert z0.shape == (6, 4) and set(picks) <= {0, 1, 2}
    first = run_dream(dream, params, z0, 1.0, 25, seed=7)
    second = run_dream(dream, params, z0, 1.0, 25, seed=7)
    other = run_dream(dream, params, z0, 1.0, 25, seed=8)
    np.testing.assert_array_equal(first[0], second[0])
    assert (first[1] == 25).all()
    assert not np.array_equal(first[0], other[0])
    # A single dream, first in a fresh graph (its batch is (1, ...) on entry), and recorded.
    for record in (False, True):
        alone = run_dream(make_dream(rnn, record=record), params[:1], z0[:1], 1.0, 25, seed=7)
        assert alone[1].tolist() == [25]


def test_dream_stops_agents_that_are_done():
    rnn = MDNRNN(4, 16, 2)
    rnn.done_head.bias.assign([30.0])  # done at the first step
    returns, lengths = run_dream(make_dream(rnn), np.zeros((3, param_count(20)), np.float32),
                                 np.zeros((3, 4), np.float32), 1.0, 25, seed=1)
    assert (lengths == 1).all()


def test_cma_es_maximises_and_is_deterministic():
    target = np.linspace(-1, 1, 10)

    def run(seed):
        evolution = Evolution(10, 16, 0.5, seed)
        for _ in range(60):
            candidates = evolution.ask()
            evolution.tell(candidates, -((candidates - target) ** 2).sum(axis=1))
        return evolution.mean

    mean = run(3)
    assert np.abs(mean - target).max() < 0.05
    np.testing.assert_array_equal(mean, run(3))
    assert not np.array_equal(mean, run(4))


def test_mixture_sampling_draws_components_with_their_probabilities():
    from worldmodels.model.dream import sample_next_z

    n = 40_000
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.15, 0.25], np.float32))
    means = np.array([-20.0, -10.0, 0.0, 10.0, 20.0], np.float32)
    predictions = {
        "logits": tf.constant(np.broadcast_to(logits, (n, 1, 5))),
        "mu": tf.constant(np.broadcast_to(means, (n, 1, 5))),
        "logstd": tf.constant(np.full((n, 1, 5), -5.0, np.float32)),
    }
    z = sample_next_z(predictions, 1.0, tf.constant([3, 4], tf.int64)).numpy()[:, 0]
    frequencies = np.array([np.mean(np.abs(z - m) < 1.0) for m in means])
    np.testing.assert_allclose(frequencies, np.exp(logits), atol=0.01)
    # Temperature flattens the mixture: tau = 1e3 makes the components nearly equally likely.
    z = sample_next_z(predictions, 1e3, tf.constant([3, 5], tf.int64)).numpy()[:, 0]
    frequencies = np.array([np.mean(np.abs(z - m) < 5.0) for m in means])
    np.testing.assert_allclose(frequencies, 0.2, atol=0.015)


def test_burn_in_starts_dreams_from_m_memory_of_real_steps():
    from worldmodels.model.dream import burn_in_starts

    rnn = MDNRNN(z_size=4, hidden_size=8, mixtures=2)
    rng = np.random.default_rng(0)
    starts = {"mu": rng.normal(size=(3, 6, 4)).astype(np.float32),
              "logvar": np.full((3, 6, 4), -20.0, np.float32),  # z = mu, to compare exactly
              "actions": rng.uniform(size=(3, 5, 3)).astype(np.float32)}
    z0, (h0, c0), picks = burn_in_starts(rnn, starts, 4, np.random.default_rng(1))
    np.testing.assert_allclose(z0, starts["mu"][picks, 5], atol=1e-3)
    state = rnn.initial_state(1)
    for t in range(5):  # M stepped by hand over the same real steps gives the same memory
        x = np.concatenate([starts["mu"][picks[0], t], starts["actions"][picks[0], t]])[None]
        _, state = rnn.step(tf.constant(x, tf.float32), state)
    np.testing.assert_allclose(h0[0], state[0].numpy()[0], atol=1e-3)
    params = np.zeros((4, param_count(12)), np.float32)
    dream = make_dream(rnn)
    blank = run_dream(dream, params, z0, 1.0, 10, seed=3)
    primed = run_dream(dream, params, z0, 1.0, 10, seed=3, state=(h0, c0))
    again = run_dream(dream, params, z0, 1.0, 10, seed=3, state=(h0, c0))
    np.testing.assert_array_equal(primed[0], again[0])
    assert not np.allclose(primed[0], blank[0])


def test_a_steering_penalty_costs_what_the_steering_moved():
    rnn = MDNRNN(4, 16, 2)
    rnn.done_head.bias.assign([-30.0])
    rnn.reward_head.bias.assign([1.0])
    rng = np.random.default_rng(5)
    params = rng.normal(size=(6, param_count(20)), scale=0.5).astype(np.float32)
    z0 = rng.normal(size=(6, 4)).astype(np.float32)
    plain, plain_lengths = run_dream(make_dream(rnn), params, z0, 1.0, 25, seed=7)
    half, half_lengths = run_dream(make_dream(rnn, spec=DreamSpec(steer_penalty=0.5)), params, z0,
                                     1.0, 25, 7)
    whole, _ = run_dream(make_dream(rnn, spec=DreamSpec(steer_penalty=1.0)), params, z0, 1.0,
                         25, seed=7)
    # The penalty changes the score, never the dream: the same steps, a cost in proportion.
    np.testing.assert_array_equal(plain_lengths, half_lengths)
    cost = plain - half
    assert (cost > 0).all() and (cost <= 0.5 * 2 * 24 + 1e-3).all()  # |steer step| <= 2
    np.testing.assert_allclose(plain - whole, 2 * cost, rtol=1e-4)
    steady = params.copy()
    steady[:, : 20 * 3] = 0.0  # no weights, only biases: the same action at every step
    np.testing.assert_allclose(
        run_dream(make_dream(rnn, spec=DreamSpec(steer_penalty=1.0)), steady, z0, 1.0, 25,
                  seed=7)[0],
        run_dream(make_dream(rnn), steady, z0, 1.0, 25, seed=7)[0], rtol=1e-6)


def _assert_seeded_and_off_is_plain(rnn, rng_seed, **on):
    """A dream with ``on`` (e.g. dropout=0.3) is the same for the same seed, differs from the
    plain dream, and with the same options at 0 is the plain dream."""
    rng = np.random.default_rng(rng_seed)
    params = rng.normal(size=(6, param_count(20)), scale=0.1).astype(np.float32)
    z0 = rng.normal(size=(6, 4)).astype(np.float32)
    plain = run_dream(make_dream(rnn), params, z0, 1.0, 25, seed=7)
    off = run_dream(make_dream(rnn, spec=DreamSpec(**{k: 0.0 for k in on})), params, z0, 1.0,
                    25, seed=7)
    varied = make_dream(rnn, spec=DreamSpec(**on))
    first = run_dream(varied, params, z0, 1.0, 25, seed=7)
    again = run_dream(varied, params, z0, 1.0, 25, seed=7)
    np.testing.assert_array_equal(plain[0], off[0])
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.allclose(first[0], plain[0])


def test_dream_dropout_is_seeded_and_off_means_the_plain_dream():
    rnn = MDNRNN(4, 16, 2, dropout=0.3)
    rnn.done_head.bias.assign([-30.0])
    rnn.reward_head.bias.assign([1.0])
    _assert_seeded_and_off_is_plain(rnn, 0, dropout=0.3)


def test_dream_action_noise_is_seeded_and_off_means_the_plain_dream():
    rnn = MDNRNN(4, 16, 2)
    rnn.done_head.bias.assign([-30.0])
    _assert_seeded_and_off_is_plain(rnn, 1, action_noise=0.3)


def test_training_dropout_only_while_training():
    rnn = MDNRNN(4, 16, 2, dropout=0.5)
    inputs = tf.random.stateless_normal((2, 5, 7), [1, 2])
    eval_a, _ = rnn(inputs)
    eval_b, _ = rnn(inputs)
    train, _ = rnn(inputs, training=True)
    np.testing.assert_array_equal(eval_a["reward"].numpy(), eval_b["reward"].numpy())
    assert not np.allclose(train["mu"].numpy(), eval_a["mu"].numpy())


def test_recheck_keeps_the_best_by_its_second_score_not_by_the_lucky_first(tmp_path):
    from worldmodels.config import ControllerConfig
    from worldmodels.core.figures import read_rows
    from worldmodels.model.evolution import evolve

    target = np.linspace(-1, 1, 6)

    def true_value(candidates):
        return -((np.atleast_2d(candidates) - target) ** 2).sum(axis=1)

    def noisy(candidates, generation):  # a few trials: the top is mostly luck
        rng = np.random.default_rng(generation)
        return true_value(candidates) + rng.normal(0, 3.0, len(candidates))

    config = ControllerConfig(population=12, generations=15, sigma=0.5)
    kept = {}
    for name, recheck in (("plain", None), ("recheck", lambda top, g: true_value(top)[0])):
        directory = tmp_path / name
        history = evolve(noisy, 6, config, 1, directory, progress=False, recheck_fn=recheck)
        kept[name] = (history, np.load(directory / "best.npy"))
        assert read_rows(directory / "history.csv")[-1]["best_so_far"] == \
            pytest.approx(history[-1]["best_so_far"])
    history, best = kept["recheck"]
    rechecks = [row["recheck"] for row in history]
    assert [row["best_so_far"] for row in history] == list(np.maximum.accumulate(rechecks))
    assert history[-1]["best_so_far"] == pytest.approx(true_value(best)[0])
    # Without the recheck, the kept best's score is its luckiest draw, far above its worth.
    history, best = kept["plain"]
    assert "recheck" not in history[-1]
    assert history[-1]["best_so_far"] > true_value(best)[0] + 1.0
    # Both runs asked CMA-ES the same: the recheck only changes which candidate is kept.
    assert [row["mean"] for row in kept["plain"][0]] == \
        [row["mean"] for row in kept["recheck"][0]]
