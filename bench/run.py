"""The targets measured in one run, each in a fresh process; the Markdown table and
RESULTS/bench.json. ``main`` measures one target in this process (``python -m
worldmodels_bench TARGET WORKERS ROOT [--quick]``) and prints its rows as one JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from .data import bench_collect, bench_memory, bench_ray_collect, bench_stream
from .dream import bench_dream
from .real import bench_real
from .rows import TAKECOVER, Row, machine
from .startup import bench_startup

TARGETS = ("startup", "collect", "stream", "memory", "dream", "real", "ray-collect",
           "doom-collect", "doom-dream")


def _scale(quick: bool, workers: int) -> dict:
    if quick:
        return dict(collect_episodes=2 * workers, collect_steps=250, stream_batches=30,
                    memory_episodes=4, memory_copies=10, generations=1, naive_steps=200,
                    real_episodes=4 * workers, real_steps=300)  # one episode per env slot
    return dict(collect_episodes=2 * workers, collect_steps=1000, stream_batches=100,
                memory_episodes=4, memory_copies=10, generations=3, naive_steps=1000,
                real_episodes=8 * workers, real_steps=1000)  # two per env slot


def measure(target: str, quick: bool, workers: int, root: Path, log=print) -> list[Row]:
    """One target, in this process (``run_bench`` gives each target a fresh process)."""
    scale = _scale(quick, workers)
    if target == "startup":
        return bench_startup(log)
    if target == "collect":
        return bench_collect(root, workers, scale["collect_episodes"], scale["collect_steps"],
                             log)
    if target == "stream":
        return bench_stream(root, log, batches=scale["stream_batches"])
    if target == "memory":
        return bench_memory(root, scale["memory_episodes"], scale["memory_copies"], log)
    if target == "dream":
        return bench_dream(64, 16, 1000, scale["naive_steps"], log,
                           generations=scale["generations"])
    if target == "real":
        return bench_real(workers, scale["real_episodes"], scale["real_steps"], log)
    if target == "doom-collect":
        # TakeCover's random-policy episodes last about 280 steps: ten times CarRacing's count
        return bench_collect(root, workers, 10 * scale["collect_episodes"], 2100, log,
                             env_id=TAKECOVER, policy="repeat")
    if target == "doom-dream":
        return bench_dream(64, 16, 2100 if not quick else 200, 0, log, env_id=TAKECOVER)
    if target == "ray-collect":
        return bench_ray_collect(root, workers, scale["collect_episodes"],
                                 scale["collect_steps"], log)
    raise ValueError(f"unknown target {target!r}")


def run_bench(targets, quick: bool, workers: int, log=print) -> dict:
    """Measure ``targets``, each in a fresh process (so that no target inherits another's
    threads, memory or caches); returns the bench.json payload."""
    order = [t for t in TARGETS if t in targets]
    if ("stream" in order or "memory" in order) and "collect" not in order:
        order.insert(1 if order[0] == "startup" else 0, "collect")  # they train on its rollouts
    rows: list[dict] = []
    root = Path(tempfile.mkdtemp(prefix="worldmodels-bench-"))
    started = time.time()
    try:
        for target in order:
            measured = _in_subprocess(target, quick, workers, root, log)
            if target in targets:
                rows += measured
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "quick": quick,
        "workers": workers,
        "wall_seconds": round(time.time() - started, 1),
        "rows": rows,
        "all_met": all(row["met"] for row in rows),
    }


def _in_subprocess(target, quick, workers, root, log) -> list[dict]:
    """``target`` measured by ``main`` in a fresh process; its log lines passed to ``log``."""
    from worldmodels.errors import WorldModelsError

    command = [sys.executable, "-m", "worldmodels_bench", target, str(workers), str(root)]
    command += ["--quick"] if quick else []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    rows = None
    for line in process.stdout:
        if line.startswith("ROWS "):
            rows = json.loads(line[5:])
        else:
            log(line.rstrip())
    error = process.stderr.read()
    if process.wait() != 0 or rows is None:
        last = [line for line in error.splitlines() if line.strip()][-1:] or ["no output"]
        raise WorldModelsError(f"bench target {target} failed: {last[0]}")
    return rows


def main(argv=None) -> None:
    """``TARGET WORKERS ROOT [--quick]``: measure one target here; print its rows after
    ``ROWS `` as one JSON line (what ``_in_subprocess`` reads)."""
    argv = sys.argv[1:] if argv is None else argv
    target, workers, root = argv[0], int(argv[1]), Path(argv[2])
    rows = measure(target, "--quick" in argv, workers, root, log=print)
    print("ROWS " + json.dumps([asdict(row) for row in rows]), flush=True)


def table(payload: dict) -> str:
    """The Markdown table of a bench.json payload."""
    lines = [f"`worldmodels bench{' --quick' if payload['quick'] else ''}`, "
             f"{payload['date']}, {payload['machine']}, {payload['workers']} workers, "
             f"{payload['wall_seconds']:.0f} s", "",
             "| target | figure | baseline | ratio | goal | met |",
             "|---|---|---|---|---|---|"]
    for row in payload["rows"]:
        lines.append(f"| {row['target']} | {row['figure']:,.1f} {row['unit']} | "
                     f"{row['baseline']:,.1f} {row['unit']} | {row['ratio']:.2f} | "
                     f"{row['goal']} | {'yes' if row['met'] else '**no**'} |")
    return "\n".join(lines)


def write_bench(targets, quick: bool, workers: int | None, results_dir: Path, log=print):
    """Measure ``targets`` and write RESULTS/bench.json; returns (its path, the table, the
    targets missed)."""
    from worldmodels.core.artifacts import ensure_writable, write_json
    from worldmodels.envs.shared import default_workers

    ensure_writable(results_dir)
    payload = run_bench(targets, quick, default_workers(workers), log=log)
    path = Path(results_dir) / "bench.json"
    write_json(path, payload)
    missed = [row["target"] for row in payload["rows"] if not row["met"]]
    return path, table(payload), missed
