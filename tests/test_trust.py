"""Trust no file and no option (issue 17, the library's half): no file the suite reads can run
code, no path leaves its root, a stage directory has one process at a time, and every damaged
file or failed write is one line naming the file and how to recover, with nothing touched."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import common, invoke
from worldmodels.artifacts import Layout, begin_stage, lock_stage, options_differ, read_json
from worldmodels.config import ControllerConfig, override
from worldmodels.errors import WorldModelsError
from worldmodels.evolution import (
    LEGACY_STATE,
    STATE,
    Evolution,
    clear_state,
    evolve,
    load_state,
    restore,
)

CLI = [sys.executable, "-c", "from commands.cli import main; main()"]


def _sphere(candidates, generation):
    return -np.sum((np.asarray(candidates) - 0.3) ** 2, axis=1)


def test_a_resumed_cma_es_is_rebuilt_bit_for_bit_from_its_fitness_values(tmp_path):
    config = ControllerConfig(population=6, generations=9, sigma=0.4, real_every=0)
    evolve(_sphere, 12, config, 5, tmp_path / "whole", progress=False)
    for generations in (2, 5, 9):  # killed twice, then run to the end
        evolve(_sphere, 12, override(config, generations=generations), 5,
               tmp_path / "resumed", progress=False)
    for name in ("history.csv", "best.npy", "mean.npy"):
        assert (tmp_path / "whole" / name).read_bytes() == \
            (tmp_path / "resumed" / name).read_bytes()
    uninterrupted = Evolution(12, 6, 0.4, 5)  # in memory, never saved
    for generation in range(9):
        candidates = uninterrupted.ask()
        uninterrupted.tell(candidates, _sphere(candidates, generation))
    replayed = restore(load_state(tmp_path / "resumed"), tmp_path / "resumed", 12, 6, 0.4, 5)
    assert np.array_equal(replayed.mean, uninterrupted.mean)
    assert replayed.es.sigma == uninterrupted.es.sigma
    assert np.array_equal(replayed.es.sm.C, uninterrupted.es.sm.C)
    assert np.array_equal(replayed.ask(), uninterrupted.ask())  # the next generation too
    with np.load(tmp_path / "whole" / STATE, allow_pickle=False) as saved:
        assert all(saved[key].dtype != object for key in saved.files)


def test_a_state_made_for_other_settings_or_replaying_elsewhere_is_refused(tmp_path):
    config = ControllerConfig(population=6, generations=3, sigma=0.4, real_every=0)
    evolve(_sphere, 12, config, 5, tmp_path, progress=False)
    with pytest.raises(WorldModelsError, match="was made with"):
        evolve(_sphere, 12, override(config, generations=4, population=7), 5, tmp_path, False)
    with np.load(tmp_path / STATE) as saved:
        arrays = {key: saved[key] for key in saved.files}
    arrays["fitness"] = -arrays["fitness"]  # other ranks than those the mean came from
    with open(tmp_path / STATE, "wb") as file:
        np.savez(file, **arrays)
    with pytest.raises(WorldModelsError, match="damaged .*does not give its CMA-ES mean"):
        evolve(_sphere, 12, override(config, generations=4), 5, tmp_path, False)
    clear_state(tmp_path)
    assert not (tmp_path / STATE).exists()


class _Exploit:
    """A pickle that would create a marker file when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_crafted_state_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    directory = tmp_path / "c"
    directory.mkdir()
    (directory / LEGACY_STATE).write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(WorldModelsError, match="state.pkl is a CMA-ES state of an older"):
        load_state(directory)
    with open(directory / STATE, "wb") as file:  # an object array: a pickle inside the npz
        np.savez(file, fitness=np.array([_Exploit(marker)], dtype=object))
    with pytest.raises(WorldModelsError, match=f"{STATE} is damaged.*--force"):
        load_state(directory)
    assert not marker.exists()


def test_options_that_differ_from_a_complete_stage_are_named(tmp_path):
    manifest, state = begin_stage(tmp_path, "encode", {"episodes": 4, "workers": 2}, 0, {})
    from worldmodels.artifacts import finish_manifest

    finish_manifest(tmp_path, manifest)
    manifest, state = begin_stage(tmp_path, "encode", {"episodes": 4, "workers": 1}, 0, {})
    assert state == "complete" and options_differ(manifest, {"episodes": 4}, 0, {}) == []
    assert options_differ(manifest, {"episodes": 5}, 1, {"x": 1}) == \
        ["config.episodes", "seed", "inputs"]
