"""worldmodels pipeline: every stage in order for a preset."""

from __future__ import annotations

import click

from .options import complete_hints, progress_enabled, stage_command


def _variants(context, parameter, value):
    """'zh,z' -> ('zh', 'z'), each a known controller variant."""
    from worldmodels.config import CONTROLLER_VARIANTS

    variants = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [v for v in variants if v not in CONTROLLER_VARIANTS]
    if not variants or unknown:
        raise click.BadParameter(f"expected some of {', '.join(CONTROLLER_VARIANTS)} "
                                 f"separated by commas, got {value!r}")
    return tuple(dict.fromkeys(variants))


@stage_command("pipeline")
@click.option("--skip-complete/--redo", default=True, show_default=True,
              help="Skip stages whose outputs are already complete (--redo: --force each).")
@click.option("--variants", default="zh", show_default=True, callback=_variants,
              help="Controller variants to train (in the dream) and evaluate, separated by "
                   "commas: zh (full world model), z (V only), z-hidden (V only, 40 tanh hidden "
                   "units), the rows of the paper's CarRacing table; zhc (M's whole state "
                   "[z, h, c], as the paper's TakeCover controller).")
def pipeline_command(run, skip_complete, variants):
    """Run collect, train-vae, encode, train-rnn, train-controller (dream), iterate (when the
    preset has rounds of iterative training) and evaluate (real) for each of --variants, then
    write REPORT.md. --config and --set apply to every stage."""
    from worldmodels import stages

    result = stages.pipeline(run.layout, run.preset, run.seed, run.preset_name, variants,
                             not skip_complete, progress_enabled(),
                             log=lambda line: click.echo(complete_hints(line)))
    click.echo(f"pipeline ({run.preset_name}): done in {result.seconds:.1f} s")
