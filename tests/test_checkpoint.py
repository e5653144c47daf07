"""Training checkpoints: a round trip of weights, optimizer state and progress; clear; a
non-finite loss stops training with one line."""

from __future__ import annotations

import numpy as np
import pytest

from worldmodels.core import checkpoint
from worldmodels.errors import WorldModelsError


def _model():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.Adam(1e-2)
    model.compile(optimizer, "mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), verbose=0)
    return model, optimizer


def test_save_load_round_trip_and_clear(tmp_path):
    model, optimizer = _model()
    progress = dict(checkpoint.new_progress(), epoch=2, step=7)
    checkpoint.save(tmp_path, model, optimizer, progress)
    other, other_optimizer = _model()
    other.set_weights([w * 0 for w in other.get_weights()])
    assert checkpoint.load(tmp_path, other, other_optimizer)["step"] == 7
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(optimizer.variables, other_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    checkpoint.clear(tmp_path)
    assert checkpoint.load(tmp_path, other, other_optimizer) is None


def test_non_finite_loss_names_the_term(tmp_path):
    checkpoint.check_finite({"loss": 1.0, "kl": 0.5}, 0, 3, tmp_path)
    with pytest.raises(WorldModelsError, match="non-finite kl loss .* epoch 1, step 4"):
        checkpoint.check_finite({"loss": float("nan"), "kl": float("inf")}, 1, 4, tmp_path)
