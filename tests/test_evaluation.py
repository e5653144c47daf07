"""evaluation: a controller of another shape, or trained with another M, is refused."""

from __future__ import annotations

import numpy as np
import pytest

from worldmodels.controller import Controller
from worldmodels.errors import WorldModelsError
from worldmodels.evaluation import load_controller


def test_load_controller_checks_the_shape(tmp_path):
    spec = Controller("zh", 32, 256)
    np.save(tmp_path / "best.npy", np.zeros(spec.param_count))
    assert load_controller(tmp_path / "best.npy", spec).shape == (867,)
    np.save(tmp_path / "best.npy", np.zeros(99))
    with pytest.raises(WorldModelsError, match="99 parameters.*867"):
        load_controller(tmp_path / "best.npy", spec)


def test_load_trained_refuses_a_controller_of_another_m(smoke_run, tmp_path):
    import shutil

    from worldmodels.artifacts import Layout, read_json
    from worldmodels.evaluation import load_trained

    root, _ = smoke_run
    shutil.copytree(root / "results", tmp_path / "results")
    layout = Layout(root / "data", tmp_path / "results", "smoke")
    directory = layout.controller("dream")
    manifest = read_json(directory / "manifest.json")
    world, _, _ = load_trained(layout, manifest, directory, "best", "zh", need_vae=False,
                               dreams=True)
    assert world["dropout"] == manifest["config"]["dropout"]
    manifest["inputs"]["rnn"] = "another"
    with pytest.raises(WorldModelsError, match="another M"):
        load_trained(layout, manifest, directory, "best", "zh", need_vae=False, dreams=True)
