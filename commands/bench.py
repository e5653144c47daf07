"""worldmodels bench: the performance targets, each a ratio measured side by side in one run."""

from __future__ import annotations

from pathlib import Path

import click

from worldmodels.config import CollectConfig, range_of

from .options import Number, friendly_errors


@click.command("bench")
@click.option("--targets", default="all", show_default=True,
              help="Comma-separated: startup, collect, stream, memory, dream, real (or all).")
@click.option("--quick", is_flag=True, help="Shorter runs (about 2-3 minutes in all).")
@click.option("--workers", type=Number(int, range_of(CollectConfig, "workers")),
              help="Worker processes (default: one per core).")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("results"), show_default=True, help="Where bench.json goes.")
@friendly_errors
def bench_command(targets, quick, workers, results_dir):
    """Measure each performance target against its baseline; write RESULTS/bench.json."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from worldmodels_bench.run import TARGETS, write_bench

    chosen = TARGETS if targets == "all" else tuple(t.strip() for t in targets.split(","))
    unknown = [t for t in chosen if t not in TARGETS]
    if unknown:
        raise click.BadParameter(f"unknown target(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(TARGETS)}", param_hint="--targets")
    path, text, missed = write_bench(chosen, quick, workers, results_dir, log=click.echo)
    click.echo(f"\n{text}\n\nwrote {path}")
    click.echo("every target met" if not missed else f"missed: {'; '.join(missed)}")
