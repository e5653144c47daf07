"""Shared fixtures: one smoke-preset experiment built through the real CLI, reused by tests."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

os.environ["WORLDMODELS_NO_PROGRESS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


ROOT = Path(__file__).resolve().parent.parent


def cli_package():
    """This checkout's commands/ folder as the package it installs as, worldmodels_cli (an
    installed one may come from another checkout)."""
    package = sys.modules.get("worldmodels_cli")
    if package is None or Path(package.__file__).parent != ROOT / "commands":
        spec = importlib.util.spec_from_file_location(
            "worldmodels_cli", ROOT / "commands" / "__init__.py",
            submodule_search_locations=[str(ROOT / "commands")])
        package = importlib.util.module_from_spec(spec)
        sys.modules["worldmodels_cli"] = package
        spec.loader.exec_module(package)
    return package


def cli_main():
    """The `worldmodels` command group of this checkout."""
    cli_package()
    from worldmodels_cli.cli import main

    return main


def invoke(*args, expect_ok: bool = True):
    """Run `worldmodels ARGS` in-process; exceptions are not swallowed."""
    main = cli_main()

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
