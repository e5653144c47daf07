"""worldmodels pipeline: every stage in order for a preset."""

from __future__ import annotations

import time

import click

from commands.common import common_options, friendly_errors

STAGES = ("collect", "train-vae", "encode", "train-rnn", "train-controller", "evaluate")


@click.command("pipeline")
@common_options
@click.option("--skip-complete/--redo", default=True, show_default=True,
              help="Skip stages whose outputs are already complete (--redo: --force each).")
@click.pass_context
@friendly_errors
def pipeline_command(context, preset, name, data_dir, results_dir, seed, skip_complete):
    """Run collect, train-vae, encode, train-rnn, train-controller (dream) and evaluate (real)."""
    from commands.cli import main
    from worldmodels.artifacts import Layout, read_json, write_json

    started = time.time()
    layout = Layout(data_dir, results_dir, name)
    common = ["--preset", preset, "--name", name, "--data-dir", str(data_dir),
              "--results-dir", str(results_dir), "--seed", str(seed)]
    timings_path = layout.experiment / "pipeline.json"
    timings = read_json(timings_path) if timings_path.exists() else {}
    for stage in STAGES:
        click.echo(f"== {stage}")
        stage_started = time.time()
        command = main.get_command(context, stage)
        params = dict(_defaults(context, command, common), force=not skip_complete)
        # Each stage decides for itself whether its outputs are complete.
        if context.invoke(command, **params) == "complete":
            click.echo(f"== {stage}: complete, skipped")
            continue
        timings[stage] = round(time.time() - stage_started, 1)
        write_json(timings_path, {**timings, "preset": preset, "seed": seed})
    click.echo(f"wrote {timings_path}")
    click.echo(f"pipeline ({preset}): done in {time.time() - started:.1f} s")


def _defaults(context, command, args):
    """Parse ``args`` with ``command``'s own parser so every option gets its default."""
    sub = command.make_context(command.name, list(args), parent=context)
    return sub.params
