"""worldmodels bench: the performance targets, each a ratio measured side by side in one run."""

from __future__ import annotations

from pathlib import Path

import click

from commands.common import friendly_errors, positive


@click.command("bench")
@click.option("--targets", default="all", show_default=True,
              help="Comma-separated: startup, collect, stream, memory, dream, real (or all).")
@click.option("--quick", is_flag=True, help="Shorter runs (about 2-3 minutes in all).")
@click.option("--workers", type=int, help="Worker processes (default: one per core).")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results"), show_default=True, help="Where bench.json goes.")
@friendly_errors
def bench_command(targets, quick, workers, results_dir):
    """Measure each performance target against its baseline; write RESULTS/bench.json."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from worldmodels.artifacts import ensure_writable, write_json
    from worldmodels.bench import TARGETS, run_bench, table
    from worldmodels.env import default_workers

    positive("workers", workers)
    chosen = TARGETS if targets == "all" else tuple(t.strip() for t in targets.split(","))
    unknown = [t for t in chosen if t not in TARGETS]
    if unknown:
        raise click.BadParameter(f"unknown target(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(TARGETS)}", param_hint="--targets")
    ensure_writable(results_dir)
    payload = run_bench(chosen, quick, default_workers(workers), log=click.echo)
    path = Path(results_dir) / "bench.json"
    write_json(path, payload)
    click.echo("")
    click.echo(table(payload))
    click.echo(f"\nwrote {path}")
    missed = [row["target"] for row in payload["rows"] if not row["met"]]
    click.echo("every target met" if not missed else f"missed: {'; '.join(missed)}")
