import dataclasses

import pytest

from worldmodels.config import (
    PRESET_NAMES,
    get_preset,
    override,
    to_dict,
)
from worldmodels.errors import WorldModelsError


def test_presets_exist_and_paper_matches_the_paper():
    for name in PRESET_NAMES:
        assert get_preset(name).collect.episodes > 0
    paper = get_preset("paper")
    assert paper.collect.episodes == 10_000
    assert (paper.controller.population, paper.controller.trials) == (64, 16)
    assert paper.controller.sigma == 0.1
    assert (paper.vae.z_size, paper.vae.kl_tolerance, paper.vae.batch_size) == (32, 0.5, 100)
    assert (paper.rnn.hidden_size, paper.rnn.mixtures, paper.rnn.grad_clip) == (256, 5, 1.0)


def test_unknown_preset_is_a_value_error():
    with pytest.raises(WorldModelsError, match="unknown preset"):
        get_preset("huge")


def test_override_ignores_none_and_keeps_frozen():
    config = get_preset("small").vae
    changed = override(config, epochs=7, batch_size=None)
    assert changed.epochs == 7 and changed.batch_size == config.batch_size
    assert to_dict(changed)["epochs"] == 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.epochs = 3


def test_controller_param_count_is_the_papers():
    from worldmodels.controller import param_count

    assert param_count(32 + 256) == 867
