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
    from worldmodels.model.controller import param_count

    assert param_count(32 + 256) == 867


def test_dream_spec_round_trips_through_a_manifest_and_old_manifests_take_the_defaults():
    from worldmodels.config import ControllerConfig, DreamSpec

    config = dataclasses.replace(get_preset("smoke").controller, temperature=0.8, burn_in=3,
                                 dropout=0.1, dropout_mask="dream", action_noise=0.05,
                                 steer_penalty=0.2, pay_as_track=True, max_steps=40)
    manifest = {"config": to_dict(config)}  # as train-controller writes it
    spec = DreamSpec.from_manifest(manifest)
    assert spec == DreamSpec.from_config(config)
    assert (spec.temperature, spec.burn_in, spec.dropout, spec.dropout_mask) == \
        (0.8, 3, 0.1, "dream")
    assert (spec.action_noise, spec.steer_penalty, spec.pay_as_track, spec.max_steps) == \
        (0.05, 0.2, True, 40)
    # A manifest written before the dream options existed: each takes ControllerConfig's.
    old = DreamSpec.from_manifest({"config": {"population": 4, "max_steps": 40}})
    defaults = ControllerConfig()
    assert old.temperature == defaults.temperature and old.max_steps == 40
    assert (old.dropout, old.action_noise, old.pay_as_track, old.dropout_mask) == \
        (defaults.dropout, defaults.action_noise, defaults.pay_as_track, defaults.dropout_mask)
    assert DreamSpec.from_manifest({}) == DreamSpec.from_config(defaults)
