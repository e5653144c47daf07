"""worldmodels compare: a trained controller in the dream over a temperature sweep and in the
real env, side by side."""

from __future__ import annotations

import time

import click

from commands.common import (
    common_options,
    force_option,
    friendly_errors,
    positive,
    progress_enabled,
    setup_tensorflow,
    summary,
    variant_option,
)


def _temperatures(context, parameter, value):
    """'0.5,0.75,1.0' -> (0.5, 0.75, 1.0), each > 0."""
    if value is None:
        return None
    try:
        temperatures = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {value!r}") from None
    if not temperatures or min(temperatures) <= 0:
        raise click.BadParameter(f"expected temperatures > 0, got {value!r}")
    return temperatures


def _dropouts(context, parameter, value):
    """'0,0.1,0.2' -> (0.0, 0.1, 0.2), each in [0, 1)."""
    if value is None:
        return None
    try:
        rates = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {value!r}") from None
    if not rates or not all(0 <= rate < 1 for rate in rates):
        raise click.BadParameter(f"expected rates in [0, 1), got {value!r}")
    return rates


@click.command("compare")
@common_options
@variant_option
@click.option("--params", type=click.Choice(["best", "mean"]), default="best", show_default=True,
              help="The best candidate found, or the final CMA-ES mean.")
@click.option("--controller", "trained_in", type=click.Choice(["dream", "real"]), default="dream",
              show_default=True, help="Which trained controller: controller-dream or -real.")
@click.option("--temperatures", callback=_temperatures,
              help="Dream temperatures to score the controller at, separated by commas "
                   "(default 0.5,0.75,1.0,1.15,1.3). Not the temperature C was trained at "
                   "(train-controller --train-temperature).")
@click.option("--dropouts", callback=_dropouts,
              help="Dream dropout rates of a second sweep at the temperature C was trained at, "
                   "separated by commas (default: none): how hard the dream must be for its "
                   "score to match the real one.")
@click.option("--episodes", type=int,
              help="Episodes in the dream at each temperature and in the real env (default "
                   "from the preset: 2 smoke, 20 small, 100 paper).")
@click.option("--max-steps", type=int, help="Steps per episode.")
@click.option("--workers", type=int, help="Worker processes for the real env.")
@force_option
@friendly_errors
def compare_command(preset, name, data_dir, results_dir, seed, variant, params, trained_in,
                    temperatures, dropouts, episodes, max_steps, workers, force):
    """Score a trained controller in the dream at several temperatures and in the real env;
    write RESULTS/NAME/compare/CONTROLLER-PARAMS.{md,json,csv,png}."""
    from worldmodels.artifacts import Layout, ensure_writable, read_json, require_manifest
    from worldmodels.config import get_preset, override

    started = time.time()
    for option, value in (("episodes", episodes), ("max-steps", max_steps),
                          ("workers", workers)):
        positive(option, value)
    config = override(get_preset(preset).compare, temperatures=temperatures, dropouts=dropouts,
                      episodes=episodes,
                      max_steps=max_steps, workers=workers)
    layout = Layout(data_dir, results_dir, name)
    directory = layout.controller(trained_in, variant)
    controller = require_manifest(directory, f"controller trained in the {trained_in}",
                                  f"train-controller --where {trained_in} --variant {variant}")
    from worldmodels.compare import comparison_key, output_stem, write_comparison

    stem = output_stem(trained_in, variant, params)
    output = layout.experiment / "compare"
    path, partial = output / f"{stem}.json", output / f"{stem}.partial.json"
    ensure_writable(output)
    key = comparison_key(controller, params, variant, config, seed)
    if path.exists() and not force and read_json(path).get("key") == key:
        click.echo(f"compare: complete in {path}; add --force to redo it")
        return "complete"
    if force:
        partial.unlink(missing_ok=True)
    setup_tensorflow(seed)
    from worldmodels.compare import compare, markdown_table

    result = compare(layout, controller, directory, params, variant, config, seed, partial,
                     progress=progress_enabled(), log=click.echo)
    for written in write_comparison(result, output, stem):
        click.echo(f"wrote {written}")
    partial.unlink(missing_ok=True)
    click.echo("")
    click.echo(markdown_table(result))
    summary(f"compare: real {result['real']['mean']:.1f} ± {result['real']['std']:.1f} over "
            f"{result['episodes']} episodes; dream at {len(result['rows'])} temperatures",
            started)
