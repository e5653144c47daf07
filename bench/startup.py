"""The start-up target: `worldmodels --help` and every stage's `--help`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from .rows import Row, ratio_row


def bench_startup(log) -> list[Row]:
    """`worldmodels --help` and `worldmodels STAGE --help` of every stage the group lists, each
    a fresh process of the installed command: what a user waits for."""
    from worldmodels.errors import WorldModelsError

    beside = Path(sys.executable).parent / "worldmodels"
    executable = str(beside) if beside.exists() else shutil.which("worldmodels")
    if executable is None:
        raise WorldModelsError("no installed `worldmodels` command to time: install the "
                               "package first (pip install -e .)")
    times = {}
    started = time.perf_counter()
    listing = subprocess.run([executable, "--help"], check=True, capture_output=True, text=True)
    times["(group)"] = time.perf_counter() - started
    stages = [line.split()[0] for line in listing.stdout.split("Stages:")[-1].splitlines()
              if line.startswith("  ") and not line.startswith("   ") and line.split()]
    for stage in stages:
        started = time.perf_counter()
        subprocess.run([executable, stage, "--help"], check=True, capture_output=True)
        times[stage] = time.perf_counter() - started
    slowest = max(times, key=times.get)
    log(f"startup: slowest --help is `worldmodels {slowest} --help` at {times[slowest]:.2f} s")
    return [ratio_row("startup: slowest --help (s)", times[slowest], 1.5, "s", goal_max=1.0,
                      detail=f"{len(times)} commands; slowest: {slowest}; baseline = the 1.5 s "
                             "budget")]
