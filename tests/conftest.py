"""Shared fixtures: one smoke-preset experiment built through the real CLI, reused by tests."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

os.environ["WORLDMODELS_NO_PROGRESS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def invoke(*args, expect_ok: bool = True):
    """Run `worldmodels ARGS` in-process; exceptions are not swallowed."""
    from commands.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if expect_ok:
        assert result.exit_code == 0, result.output
    return result


def common(root, name="smoke", seed=0):
    return ["--preset", "smoke", "--name", name, "--data-dir", root / "data",
            "--results-dir", root / "results", "--seed", seed]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A smoke experiment run stage by stage through the CLI; returns its root and outputs."""
    root = tmp_path_factory.mktemp("smoke")
    outputs = {}
    for stage in ("collect", "train-vae", "encode", "train-rnn", "train-controller"):
        outputs[stage] = invoke(stage, *common(root)).output
    outputs["evaluate"] = invoke("evaluate", *common(root)).output
    outputs["evaluate-dream"] = invoke("evaluate", *common(root), "--where", "dream").output
    return root, outputs


def copy_smoke(smoke_run, tmp_path, parts=("results",)):
    """A scratch copy of the smoke experiment's ``parts`` (the others stay shared, read-only);
    returns the common CLI arguments that point at it."""
    import shutil

    root, _ = smoke_run
    dirs = {}
    for part in ("data", "results"):
        dirs[part] = tmp_path / part if part in parts else root / part
        if part in parts:
            shutil.copytree(root / part / "smoke", dirs[part] / "smoke")
    return ["--preset", "smoke", "--name", "smoke", "--data-dir", dirs["data"],
            "--results-dir", dirs["results"], "--seed", 0]
