"""An agent that travels: `worldmodels export` and `load_agent(bundle)` act exactly as the
experiment's own agent; a bundle that is not what export wrote is refused."""

from __future__ import annotations

import io
import json
import tarfile

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
