"""evaluation: a controller of another shape, or trained with another M, is refused."""

from __future__ import annotations

import numpy as np
import pytest

from worldmodels.errors import WorldModelsError
from worldmodels.model.controller import Controller
from worldmodels.scoring.evaluation import load_controller


def test_load_controller_checks_the_shape(tmp_path):
    spec = Controller("zh", 32, 256)
    np.save(tmp_path / "best.npy", np.zeros(spec.param_count))
    assert load_controller(tmp_path / "best.npy", spec).shape == (867,)
    np.save(tmp_path / "best.npy", np.zeros(99))
    with pytest.raises(WorldModelsError, match="99 parameters.*867"):
        load_controller(tmp_path / "best.npy", spec)


def test_load_trained_refuses_a_controller_of_another_m(smoke_run, tmp_path):
    import shutil

    from worldmodels.core.artifacts import Layout, read_json
    from worldmodels.scoring.evaluation import load_trained

    root, _ = smoke_run
    shutil.copytree(root / "results", tmp_path / "results")
    layout = Layout(root / "data", tmp_path / "results", "smoke")
    directory = layout.controller("dream")
    manifest = read_json(directory / "manifest.json")
    world, _, _, dreamt = load_trained(layout, manifest, directory, "best", "zh",
                                       need_vae=False, dreams=True)
    assert dreamt.dropout == manifest["config"]["dropout"]
    assert world.burn_in == dreamt.burn_in == manifest["config"]["burn_in"]
    manifest["inputs"]["rnn"] = "another"
    with pytest.raises(WorldModelsError, match="another M"):
        load_trained(layout, manifest, directory, "best", "zh", need_vae=False, dreams=True)


def test_every_dream_of_a_trained_c_is_at_its_own_temperature(smoke_run, tmp_path):
    import json

    from tests.conftest import copy_smoke, invoke
    from worldmodels.api import load_agent
    from worldmodels.config import DreamSpec

    args = copy_smoke(smoke_run, tmp_path)
    results = tmp_path / "results" / "smoke"
    invoke("train-controller", *args, "--temperature", "0.9", "--force")
    manifest = json.loads((results / "controller-dream" / "manifest.json").read_text())
    assert DreamSpec.from_manifest(manifest).temperature == 0.9
    assert DreamSpec.from_manifest({}).temperature == 1.15  # before the field: the default
    invoke("evaluate", *args, "--where", "dream", "--force")
    evaluated = json.loads((results / "evaluate" / "dream-dream-best.json").read_text())
    assert evaluated["temperature"] == 0.9
    agent = load_agent("smoke", results_dir=tmp_path / "results",
                       data_dir=smoke_run[0] / "data")
    assert agent.dreamt.temperature == 0.9
    # a real evaluation does not dream: its temperature is no option of it
    invoke("evaluate", *args, "--force")
    again = invoke("evaluate", *args, "--temperature", "2.0").output
    assert "complete in" in again, again


def test_a_judge_dreams_c_in_an_m_it_was_not_evolved_in(smoke_run, tmp_path):
    import json
    import shutil

    from tests.conftest import copy_smoke, invoke
    from worldmodels.config import DreamSpec
    from worldmodels.core.artifacts import Layout
    from worldmodels.model.world import load_world
    from worldmodels.scoring.scorers import EVALUATE_STAGE_KEY, DreamScorer

    args = copy_smoke(smoke_run, tmp_path)
    results = tmp_path / "results" / "smoke"
    # The judge: the same experiment (data, V) in another results root, its M from seed 5.
    judges = tmp_path / "judges"
    shutil.copytree(results, judges / "smoke")
    judge_args = [*args[:7], judges, *args[8:]]
    invoke("train-rnn", *judge_args, "--seed", 5, "--force")
    judge_id = json.loads((judges / "smoke" / "rnn" / "manifest.json").read_text())["run_id"]

    own = invoke("evaluate", *args, "--where", "dream", "--seed", 3, "--force")
    judged = invoke("evaluate", *args, "--where", "dream", "--seed", 3, "--judge", judges)
    assert own.exit_code == judged.exit_code == 0
    # (episodes of seed 3, not C's own 0: files of their own, -seed3)
    mine = json.loads((results / "evaluate" / "dream-dream-best-seed3.json").read_text())
    theirs = json.loads(
        (results / "evaluate" / f"dream-dream-best-judge-{judge_id}-seed3.json").read_text())
    assert theirs["judge"]["rnn_run_id"] == judge_id
    assert theirs["controller_run_id"] == mine["controller_run_id"]
    assert theirs["scores"] != mine["scores"]  # another M, another dream
    # ... and the dream is the judge's M's, C as it was trained (its temperature, its spec).
    controller = json.loads((results / "controller-dream" / "manifest.json").read_text())
    dreamt = DreamSpec.from_manifest(controller)
    world = load_world(Layout(args[5], judges, "smoke"), need_vae=False, burn_in=dreamt.burn_in)
    spec = Controller("zh", world.z_size, world.hidden_size, world.env_id)
    flat = np.load(results / "controller-dream" / "best.npy")
    params = np.repeat(flat[None], len(theirs["scores"]), axis=0).astype(np.float32)
    scores, _ = DreamScorer(world, dreamt, 3, spec, theirs["temperature"],
                            theirs["config"]["max_steps"]).run(params, EVALUATE_STAGE_KEY)
    np.testing.assert_allclose(theirs["scores"], scores, rtol=1e-5)

    refused = invoke("evaluate", *args, "--judge", judges, expect_ok=False)
    assert refused.exit_code != 0 and "--judge runs only with --where dream" in refused.output
    nowhere = invoke("evaluate", *args, "--where", "dream", "--judge", tmp_path / "none",
                     expect_ok=False)
    assert nowhere.exit_code != 0 and len(nowhere.output.strip().splitlines()) == 1
