"""V, M and C: parameter counts and reference checks of the losses."""

import numpy as np
import tensorflow as tf

from worldmodels.config import RnnConfig
from worldmodels.model.controller import act_batch, act_numpy, pack, param_count, unpack
from worldmodels.model.rnn import (
    MDNRNN,
    REFERENCE_PARAMETERS,
    epoch_windows,
    make_train_step,
    mdn_log_prob,
    rnn_loss,
)
from worldmodels.model.vae import ConvVAE, kl_divergence, vae_loss


def test_vae_has_the_reference_parameter_count_and_shapes():
    model = ConvVAE(32)
    assert model.count_params() == 4_348_547
    frames = np.random.default_rng(0).random((2, 64, 64, 3)).astype(np.float32)
    reconstruction, mu, logvar = model(frames)
    assert reconstruction.shape == (2, 64, 64, 3) and mu.shape == logvar.shape == (2, 32)
    assert 0 <= float(tf.reduce_min(reconstruction)) and float(tf.reduce_max(reconstruction)) <= 1


def test_kl_matches_the_closed_form():
    rng = np.random.default_rng(1)
    mu, logvar = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    sigma2 = np.exp(logvar)
    expected = 0.5 * np.sum(sigma2 + mu**2 - 1.0 - np.log(sigma2), axis=1)
    np.testing.assert_allclose(kl_divergence(mu, logvar).numpy(), expected, rtol=1e-6)


def test_vae_loss_floors_the_kl():
    x = np.zeros((3, 64, 64, 3), np.float32)
    mu = np.zeros((3, 32), np.float32)
    losses = vae_loss(x, x + 0.5, mu, mu, z_size=32, kl_tolerance=0.5)
    assert float(losses["kl"]) == 0.0
    assert np.isclose(float(losses["reconstruction"]), 64 * 64 * 3 * 0.25)
    assert np.isclose(float(losses["loss"]), 64 * 64 * 3 * 0.25 + 16.0)


def test_rnn_parameter_counts():
    model = MDNRNN(32, 256, 5)
    heads = model.reward_head.count_params() + model.done_head.count_params()
    assert model.count_params() - heads == REFERENCE_PARAMETERS == 422_368
    assert heads == 514


def test_mdn_log_likelihood_matches_numpy():
    rng = np.random.default_rng(2)
    logits, mu, logstd = (rng.normal(size=(3, 4, 5)) for _ in range(3))
    y = rng.normal(size=(3, 4))
    log_pi = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    sigma = np.exp(logstd)
    log_normal = -0.5 * ((y[..., None] - mu) / sigma) ** 2 - logstd - 0.5 * np.log(2 * np.pi)
    expected = np.log(np.exp(log_pi + log_normal).sum(-1))
    got = mdn_log_prob(*(tf.constant(a, tf.float32) for a in (logits, mu, logstd, y)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_rnn_loss_ignores_masked_steps():
    model = MDNRNN(4, 16, 2)
    rng = np.random.default_rng(3)
    inputs = rng.normal(size=(2, 6, 7)).astype(np.float32)
    targets = {"z": rng.normal(size=(2, 6, 4)).astype(np.float32),
               "reward": rng.normal(size=(2, 6)).astype(np.float32),
               "done": np.zeros((2, 6), np.float32)}
    mask = np.ones((2, 6), np.float32)
    mask[1, 3:] = 0
    predictions, _ = model(inputs)
    base = rnn_loss(predictions, targets, mask, RnnConfig())
    targets["z"][1, 3:] += 100.0
    targets["reward"][1, 3:] += 100.0
    targets["done"][1, 3:] = 1.0
    changed = rnn_loss(predictions, targets, mask, RnnConfig())
    for key in ("mdn", "reward", "done", "loss"):
        np.testing.assert_allclose(float(changed[key]), float(base[key]), rtol=1e-6)


def test_from_start_sequences_hold_every_episode_once_whole_with_similar_lengths_batched():
    rng = np.random.default_rng(0)
    lengths = np.concatenate([rng.integers(100, 400, 90), [2100, 1500, 2000, 700]])
    config = RnnConfig(batch_size=8, sequence_length=2100, windows="from-start")
    batches = epoch_windows(lengths, config, seed=3, epoch=1)
    assert len(batches) == -(-len(lengths) // 8)
    seen = np.concatenate([indices for indices, _, _ in batches])
    assert sorted(seen.tolist()) == list(range(len(lengths)))  # each episode once
    for indices, starts, steps in batches:
        assert starts == [0] * len(indices)  # from the first step: the dream's memory
        assert lengths[indices].max() <= steps <= 2100  # the longest one whole, deaths in
    # Similar lengths together: the steps computed are 1.3x the episodes' (a batch padded to
    # its longest, e.g. 2,100, would compute about 5x).
    assert sum(steps * len(i) for i, _, steps in batches) < 1.5 * lengths.sum()
    # Another epoch groups and orders them otherwise; the same epoch again the same way.
    again = epoch_windows(lengths, config, seed=3, epoch=1)
    assert all((a[0] == b[0]).all() for a, b in zip(batches, again))
    other = epoch_windows(lengths, config, seed=3, epoch=2)
    assert any(len(a[0]) != len(b[0]) or (a[0] != b[0]).any() for a, b in zip(batches, other))
    # Capped at sequence_length: a 2,100-step episode gives its first 500 steps.
    capped = epoch_windows(lengths, RnnConfig(batch_size=8, sequence_length=500,
                                              windows="from-start"), seed=3, epoch=1)
    assert max(steps for _, _, steps in capped) == 500


def test_random_windows_draw_their_starts_per_batch():
    lengths = np.array([50, 300, 900, 120])
    batches = epoch_windows(lengths, RnnConfig(batch_size=3, sequence_length=200), 0, 0)
    assert [starts for _, starts, _ in batches] == [None, None]
    assert {steps for _, _, steps in batches} == {200}
    assert sorted(np.concatenate([i for i, _, _ in batches]).tolist()) == [0, 1, 2, 3]


def test_rnn_loss_charges_over_prediction_of_the_reward_more():
    steps = 4
    predictions = {"logits": tf.zeros((1, steps, 2, 3)), "mu": tf.zeros((1, steps, 2, 3)),
                   "logstd": tf.zeros((1, steps, 2, 3)), "done_logit": tf.zeros((1, steps))}
    targets = {"z": tf.zeros((1, steps, 2)), "reward": tf.fill((1, steps), 1.0),
               "done": tf.zeros((1, steps))}
    mask = tf.ones((1, steps))

    def reward_loss(predicted, over):
        config = RnnConfig(reward_over_weight=over)
        return float(rnn_loss(dict(predictions, reward=tf.fill((1, steps), predicted)), targets,
                              mask, config)["reward"])

    assert reward_loss(1.5, 1.0) == reward_loss(0.5, 1.0) == 0.25  # plain squared error
    assert reward_loss(1.5, 5.0) == 5 * 0.25 and reward_loss(0.5, 5.0) == 0.25


def test_a_field_added_later_is_no_difference_at_its_default():
    from worldmodels.core.artifacts import options_differ

    old = {"config": {"epochs": 3}, "seed": 0, "inputs": {}}  # written before the field
    assert options_differ(old, {"epochs": 3, "reward_over_weight": 1.0}, 0, {}) == []
    assert options_differ(old, {"epochs": 3, "reward_over_weight": 5.0}, 0, {}) == \
        ["config.reward_over_weight"]


def test_m_without_a_reward_loss_trains_quietly_and_leaves_its_reward_head_alone():
    # TakeCover pays per step survived: reward_weight 0 trains no reward head. One Adam step
    # must move the other heads, leave the reward head as it was, and warn about nothing.
    import warnings

    model = MDNRNN(4, 16, 2, action_size=1)
    rng = np.random.default_rng(5)
    inputs = tf.constant(rng.normal(size=(2, 6, 5)), tf.float32)
    targets = {"z": tf.constant(rng.normal(size=(2, 6, 4)), tf.float32),
               "reward": tf.ones((2, 6)), "done": tf.zeros((2, 6))}
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    step = make_train_step(model, tf.keras.optimizers.Adam(1e-2, global_clipnorm=1.0),
                           RnnConfig(reward_weight=0.0))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Gradients do not exist")
        step(inputs, targets, tf.ones((2, 6)))
    moved = {v.path for v in model.trainable_variables
             if not np.array_equal(v.numpy(), before[v.path])}
    assert {v.path for v in model.reward_head.trainable_variables}.isdisjoint(moved)
    assert {v.path for v in model.mdn_head.trainable_variables} <= moved


def test_rnn_step_matches_the_sequence_call():
    # The dream steps the LSTM cell; training runs the whole sequence: they must agree.
    model = MDNRNN(4, 16, 2)
    inputs = np.random.default_rng(4).normal(size=(3, 5, 7)).astype(np.float32)
    sequence, _ = model(inputs)
    state = model.initial_state(3)
    for t in range(5):
        step, state = model.step(inputs[:, t], state)
        np.testing.assert_allclose(step["mu"].numpy(), sequence["mu"][:, t].numpy(), atol=1e-5)
        np.testing.assert_allclose(step["reward"].numpy(), sequence["reward"][:, t].numpy(),
                                   atol=1e-5)


def test_controller_packing_round_trips():
    rng = np.random.default_rng(5)
    weights, bias = rng.normal(size=(288, 3)), rng.normal(size=3)
    flat = pack(weights, bias)
    assert flat.shape == (param_count(288),) == (867,)
    got_w, got_b = unpack(flat, 288)
    np.testing.assert_array_equal(got_w, weights)
    np.testing.assert_array_equal(got_b, bias)
    # The first weight column is the steering row of input 0.
    assert flat[0] == weights[0, 0] and flat[3] == weights[1, 0]


def test_batched_controller_matches_numpy_and_squashes():
    rng = np.random.default_rng(6)
    params = rng.normal(size=(4, param_count(10)), scale=2.0).astype(np.float32)
    features = rng.normal(size=(4, 10)).astype(np.float32)
    batched = act_batch(tf.constant(params), tf.constant(features)).numpy()
    for i in range(4):
        np.testing.assert_allclose(batched[i], act_numpy(params[i], features[i]), atol=1e-5)
    assert (batched[:, 0] >= -1).all() and (batched[:, 0] <= 1).all()
    assert (batched[:, 1:] >= 0).all() and (batched[:, 1:] <= 1).all()


def test_controller_variants_have_the_papers_shapes_and_batch_like_numpy():
    from worldmodels.model.controller import Controller

    counts = {v: Controller(v, 32, 256).param_count for v in ("zh", "zhc", "z", "z-hidden")}
    assert counts == {"zh": 867, "zhc": (32 + 512) * 3 + 3, "z": 99,
                      "z-hidden": 32 * 40 + 40 + 40 * 3 + 3}
    # The paper's TakeCover C: 1,088 weights (and our bias).
    assert Controller("zhc", 64, 512, "VizdoomTakeCover-v1").param_count == 1088 + 1
    rng = np.random.default_rng(1)
    for variant in ("zh", "zhc", "z", "z-hidden"):
        spec = Controller(variant, 6, 5)
        params = rng.normal(size=(4, spec.param_count), scale=1.5).astype(np.float32)
        z = rng.normal(size=(4, 6)).astype(np.float32)
        h = rng.normal(size=(4, 5)).astype(np.float32)
        c = rng.normal(size=(4, 5)).astype(np.float32)
        batched = spec.act_batch(tf.constant(params), tf.constant(z), tf.constant(h),
                                 tf.constant(c)).numpy()
        for i in range(4):
            np.testing.assert_allclose(batched[i], spec.act_numpy(params[i], z[i], h[i], c[i]),
                                       atol=1e-5)
    # zhc reads the cell: its weights on c move the action, zh's inputs stop at h.
    spec = Controller("zhc", 6, 5)
    params = rng.normal(size=(4, spec.param_count), scale=1.5).astype(np.float32)
    moved = [spec.act_numpy(params[0], z[0], h[0], c[0] * k) for k in (0, 1)]
    assert np.abs(moved[0] - moved[1]).max() > 1e-3
    # The V-only variants ignore h entirely.
    spec = Controller("z", 6, 5)
    a = spec.act_batch(tf.constant(params[:, :spec.param_count]), tf.constant(z), tf.constant(h))
    b = spec.act_batch(tf.constant(params[:, :spec.param_count]), tf.constant(z),
                       tf.constant(h * 0 + 9))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_fused_step_gives_the_numbers_of_step():
    rnn = MDNRNN(6, 16, 3)
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(size=(5, 9)), tf.float32)
    state = [tf.constant(rng.normal(size=(5, 16)), tf.float32) for _ in range(2)]
    expected, (h, c) = rnn.step(inputs, state)
    got, (h2, c2) = rnn.fused_step(inputs, state, rnn.fused_weights())
    np.testing.assert_allclose(h2.numpy(), h.numpy(), atol=1e-5)
    np.testing.assert_allclose(c2.numpy(), c.numpy(), atol=1e-5)
    for key in expected:
        np.testing.assert_allclose(got[key].numpy(), expected[key].numpy(), atol=1e-5)


def test_open_loop_feeds_m_its_own_mixture_means_step_by_step():
    from worldmodels.model.rnn import mixture_mean, open_loop

    rnn = MDNRNN(z_size=4, hidden_size=8, mixtures=3)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, 4)).astype(np.float32)
    actions = rng.uniform(-1, 1, (2, 3, 3)).astype(np.float32)
    h, c = rnn.initial_state(2)
    predicted = open_loop(rnn, z, [h, c], actions)
    assert predicted.shape == (2, 3, 4)
    # By hand: the mixture mean against its NumPy formula, one step at a time.
    state, expected = [h, c], z
    for k in range(3):
        out, state = rnn.step(tf.constant(np.concatenate([expected, actions[:, k]], -1)),
                              list(state))
        logits, mu = out["logits"].numpy(), out["mu"].numpy()
        weights = np.exp(logits - logits.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        np.testing.assert_allclose(mixture_mean(out), (weights * mu).sum(-1), atol=1e-6)
        expected = mixture_mean(out)
        np.testing.assert_allclose(predicted[:, k], expected, atol=1e-6)
    assert open_loop(rnn, z, [h, c], actions[:, :0]).shape == (2, 0, 4)
