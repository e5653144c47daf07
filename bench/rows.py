"""The row every target returns: a figure against its baseline, the ratio and its goal."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

TAKECOVER = "VizdoomTakeCover-v1"


@dataclass
class Row:
    """One measured figure against its baseline."""

    target: str
    figure: float
    baseline: float
    unit: str
    ratio: float
    goal: str
    met: bool
    detail: str


def ratio_row(target, figure, baseline, unit, goal_min=None, goal_max=None, detail="") -> Row:
    """The row of ``figure`` / ``baseline``, met when at least ``goal_min`` (or at most
    ``goal_max``)."""
    ratio = figure / baseline if baseline else float("nan")
    if goal_min is not None:
        goal, met = f">= {goal_min:g}", bool(ratio >= goal_min)
    else:
        goal, met = f"<= {goal_max:g}", bool(ratio <= goal_max)
    return Row(target, float(figure), float(baseline), unit, float(ratio), goal, met, detail)


def machine() -> str:
    """The processor, cores, system and Python the figures were measured on."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
           f"{platform.system()} {platform.release()}, Python {platform.python_version()}"


def timed(run) -> float:
    """Seconds ``run()`` takes."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started
