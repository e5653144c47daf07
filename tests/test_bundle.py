"""An agent that travels: `worldmodels export` and `load_agent(bundle)` act exactly as the
experiment's own agent; a bundle that is not what export wrote is refused."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import common, invoke
from worldmodels import load_agent
from worldmodels.core.bundle import open_bundle
from worldmodels.errors import WorldModelsError


@pytest.fixture(scope="module")
def bundle(smoke_run, tmp_path_factory):
    root, _ = smoke_run
    path = tmp_path_factory.mktemp("bundle") / "agent.tar"
    assert "wrote" in invoke("export", *common(root), "-o", path).output
    return path


def test_the_exported_agent_acts_as_the_original(smoke_run, bundle, tmp_path):
    root, _ = smoke_run
    home = load_agent("smoke", results_dir=root / "results", data_dir=root / "data")
    away = load_agent(str(bundle))
    observations = np.random.default_rng(0).integers(0, 256, (12, 96, 96, 3), dtype=np.uint8)
    home.reset(seed=3)
    away.reset(seed=3)
    for observation in observations:
        np.testing.assert_array_equal(home.act(observation), away.act(observation))
    assert home.episode(seed=5, max_steps=40)["return"] == \
        away.episode(seed=5, max_steps=40)["return"]


def _rewrite(source, target, change):
    """A copy of the bundle ``source`` with ``change(name, data) -> [(name, data, type)]``."""
    with tarfile.open(source) as tar, tarfile.open(target, "w") as out:
        for entry in tar.getmembers():
            for name, data, kind in change(entry.name, tar.extractfile(entry).read()):
                info = tarfile.TarInfo(name)
                info.type = kind
                if kind == tarfile.SYMTYPE:
                    info.linkname = "/etc/passwd"
                else:
                    info.size = len(data)
                out.addfile(info, io.BytesIO(data) if kind != tarfile.SYMTYPE else None)


@pytest.mark.parametrize("case", ["escape", "absolute", "symlink", "checksum", "unlisted"])
def test_a_bundle_that_is_not_what_export_wrote_is_refused(bundle, tmp_path, case):
    def change(name, data):
        if name.endswith("best.npy"):
            if case == "escape":
                return [("results/agent/../../outside.npy", data, tarfile.REGTYPE)]
            if case == "absolute":
                return [("/tmp/outside.npy", data, tarfile.REGTYPE)]
            if case == "symlink":
                return [(name, b"", tarfile.SYMTYPE)]
            if case == "checksum":
                return [(name, data[:-1] + bytes([data[-1] ^ 1]), tarfile.REGTYPE)]
        if case == "unlisted" and name == "bundle.json":
            index = json.loads(data)
            index["files"].pop(sorted(index["files"])[0])
            return [(name, json.dumps(index).encode(), tarfile.REGTYPE)]
        return [(name, data, tarfile.REGTYPE)]

    bad = tmp_path / "bad.tar"
    _rewrite(bundle, bad, change)
    into = tmp_path / "into"
    with pytest.raises(WorldModelsError):
        open_bundle(bad, into)
    assert not (tmp_path / "outside.npy").exists()
    assert not list(into.rglob("best.npy")) if case != "checksum" else True


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """The folder Python's temporary files go to, for this test alone (to see what is left)."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def left_in(folder):
    """What is left in ``folder`` but TensorFlow's autograph sources (it writes them to the
    temporary folder the first time a process traces a function, and keeps them)."""
    return [p for p in folder.iterdir() if not p.name.startswith("__autograph_generated")]


def test_load_agent_removes_the_bundle_it_unpacked(bundle, own_tmp):
    agent = load_agent(str(bundle))
    assert left_in(own_tmp) == []
    assert agent.episode(seed=5, max_steps=10)["steps"] == 10  # loaded in memory: it still acts


def test_evaluate_and_enjoy_run_a_bundle_with_no_experiment_folder(smoke_run, bundle, tmp_path,
                                                                   own_tmp):
    root, _ = smoke_run
    home = json.loads((root / "results" / "smoke" / "evaluate" / "real-dream-best.json")
                      .read_text())
    away = ["--preset", "smoke", "--data-dir", tmp_path / "data", "--results-dir",
            tmp_path / "results", "--seed", 0]
    output = invoke("evaluate", *away, "--agent", bundle).output
    path = tmp_path / "results" / "agent" / "evaluate" / "real-dream-best.json"
    assert f"wrote {path}" in output
    result = json.loads(path.read_text())
    assert result["scores"] == home["scores"] and result["seeds"] == home["seeds"]
    assert result["controller_run_id"] == home["controller_run_id"]
    assert result["controller"] == str(Path(bundle).resolve())  # not the temporary folder
    assert left_in(own_tmp) == []  # the unpacked bundle is gone
    assert not (tmp_path / "data").exists() and not (tmp_path / "results" / "default").exists()
    # Run again: the same agent's result is complete, as for an experiment's own.
    assert "evaluate: complete in" in invoke("evaluate", *away, "--agent", bundle).output

    output = invoke("enjoy", *away, "--agent", bundle, "--name", "mine").output
    record = json.loads((tmp_path / "results" / "mine" / "enjoy" / "dream-best-track0.json")
                        .read_text())
    assert "wrote" in output and record["return"] == home["scores"][0]
    assert record["controller"] == str(Path(bundle).resolve())
    assert left_in(own_tmp) == []

    # An experiment's own folder does not take another agent's scores.
    refused = invoke("evaluate", *common(root), "--agent", bundle, expect_ok=False)
    assert refused.exit_code != 0 and "is an experiment of its own" in refused.output
