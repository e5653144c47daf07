"""worldmodels pipeline: every stage in order for a preset."""

from __future__ import annotations

import time

import click

from commands.common import common_options, friendly_errors

STAGES = ("collect", "train-vae", "encode", "train-rnn", "train-controller", "iterate",
          "evaluate")
PER_VARIANT = ("train-controller", "evaluate")


def _variants(context, parameter, value):
    """'zh,z' -> ('zh', 'z'), each a known controller variant."""
    from worldmodels.controller import VARIANTS

    variants = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [v for v in variants if v not in VARIANTS]
    if not variants or unknown:
        raise click.BadParameter(f"expected some of {', '.join(VARIANTS)} separated by commas, "
                                 f"got {value!r}")
    return tuple(dict.fromkeys(variants))


@click.command("pipeline")
@common_options
@click.option("--skip-complete/--redo", default=True, show_default=True,
              help="Skip stages whose outputs are already complete (--redo: --force each).")
@click.option("--variants", default="zh", show_default=True, callback=_variants,
              help="Controller variants to train (in the dream) and evaluate, separated by "
                   "commas: zh (full world model), z (V only), z-hidden (V only, 40 tanh hidden "
                   "units); the rows of the paper's CarRacing table.")
@click.pass_context
@friendly_errors
def pipeline_command(context, preset, name, data_dir, results_dir, seed, skip_complete,
                     variants):
    """Run collect, train-vae, encode, train-rnn, train-controller (dream), iterate (when the
    preset has rounds of iterative training) and evaluate (real) for each of --variants, then
    write REPORT.md."""
    from commands.cli import main
    from worldmodels.artifacts import Layout, read_json, write_json
    from worldmodels.config import get_preset

    started = time.time()
    layout = Layout(data_dir, results_dir, name)
    common = ["--preset", preset, "--name", name, "--data-dir", str(data_dir),
              "--results-dir", str(results_dir), "--seed", str(seed)]
    timings_path = layout.experiment / "pipeline.json"
    timings = read_json(timings_path) if timings_path.exists() else {}
    # The zh controller comes before iterate, which trains it (and M) further; the variants'
    # controllers are then trained in the final M's dream (zh's is complete and skipped).
    steps = [(stage, "zh") for stage in STAGES[:STAGES.index("train-controller")]]
    if "zh" in variants and get_preset(preset).iterate.rounds > 0:
        steps += [("train-controller", "zh"), ("iterate", "zh")]
    steps += [(stage, variant) for variant in variants for stage in PER_VARIANT]
    for stage, variant in steps:
        label = stage if variant == "zh" else f"{stage}-{variant}"
        click.echo(f"== {label}")
        stage_started = time.time()
        command = main.get_command(context, stage)
        args = common + (["--variant", variant] if stage in PER_VARIANT else [])
        params = _defaults(context, command, args)
        if "force" in params:  # iterate continues its rounds, it never starts over
            params["force"] = not skip_complete
        # Each stage decides for itself whether its outputs are complete.
        if context.invoke(command, **params) == "complete":
            click.echo(f"== {label}: complete, skipped")
            continue
        timings[label] = round(time.time() - stage_started, 1)
        write_json(timings_path, {**timings, "preset": preset, "seed": seed})
    click.echo(f"wrote {timings_path}")
    click.echo("== report")
    context.invoke(main.get_command(context, "report"),
                   **_defaults(context, main.get_command(context, "report"), common))
    click.echo(f"pipeline ({preset}): done in {time.time() - started:.1f} s")


def _defaults(context, command, args):
    """Parse ``args`` with ``command``'s own parser so every option gets its default."""
    sub = command.make_context(command.name, list(args), parent=context)
    return sub.params
