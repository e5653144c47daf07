"""worldmodels runs: every experiment under a results folder in one table, recipes pooled over
their seeds."""

from __future__ import annotations

import csv
import io
import json
import sys

import click


@click.command("runs", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--results-dir", default="results", show_default=True, type=click.Path(),
              help="Folder of the experiments.")
@click.option("--data-dir", default="data", show_default=True, type=click.Path(),
              help="Folder of their data (for the collect and encode manifests).")
@click.option("--names", default="", help="Comma-separated experiment names or shell "
              "patterns (e.g. s0steer,s1*); all experiments when empty.")
@click.option("--evaluation", default="real-dream-best", show_default=True,
              help="Which evaluate file is the real score (its name in evaluate/, without "
              ".json; e.g. real-dream-best-noise0.1).")
@click.option("--group-by", type=click.Choice(["none", "recipe"]), default="none",
              show_default=True, help="recipe: pool experiments whose every stage had the same "
              "config (seeds aside): mean ± standard error across seeds.")
@click.option("--out", default="", help="Also write RESULTS/OUT/runs.{md,json,csv} (and "
              "runs.png, the figure with error bars, with --group-by recipe).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of the table.")
def runs_command(results_dir, data_dir, names, evaluation, group_by, out, as_json, as_csv):
    """A table of experiments (preset, seed, env, stages, dream and real scores, fidelity's
    rank correlation) from the files they wrote; nothing is re-run."""
    from pathlib import Path

    from worldmodels.views import runs

    if not Path(results_dir).is_dir():
        raise click.ClickException(f"no results folder {results_dir}")
    found = runs.experiments(Path(results_dir), [n for n in names.split(",") if n])
    if not found:
        raise click.ClickException(f"no experiment under {results_dir} matches "
                                   f"{names or 'anything'}: run `worldmodels pipeline` first")
    rows = [runs.describe(Path(data_dir), Path(results_dir), name, evaluation)
            for name in found]
    pooled = runs.pool(rows) if group_by == "recipe" else None
    if as_json:
        click.echo(json.dumps({"experiments": rows, "recipes": pooled}, indent=1))
    elif as_csv:
        buffer = io.StringIO()
        table = [runs.flat(row) for row in rows]
        writer = csv.DictWriter(buffer, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
        click.echo(buffer.getvalue(), nl=False)
    else:
        click.echo(runs.markdown(rows, pooled), nl=False)
    if out:
        for path in runs.write(rows, pooled, Path(results_dir), out):
            click.echo(f"wrote {path}", err=as_json or as_csv)
    sys.stdout.flush()
