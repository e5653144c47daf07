"""worldmodels show: pictures of V, M and C under RESULTS/NAME/figures."""

from __future__ import annotations

import click

from worldmodels.config import EvaluateConfig, range_of

from .options import Number, echo, params_option, stage_command, trained_in_option, variant_option


@stage_command("show")
@variant_option
@trained_in_option
@params_option
@click.option("--temperature", type=Number(float, range_of(EvaluateConfig, "temperature")),
              help="Dream temperature of the GIF (default: the one C was trained at).")
def show_command(run, variant, trained_in, params, temperature):
    """Draw V's reconstructions and latent traversal, M's open-loop predictions, a GIF of a
    dream episode driven by C (in the dream it was trained in: its burn-in, dropout and action
    noise), and the training curves of V, M and C, into RESULTS/NAME/figures. Parts whose stage
    has not run are skipped with the command to run."""
    from worldmodels import stages

    echo(stages.show(run.layout, run.preset.collect, run.seed, variant, trained_in, params,
                     temperature, log=click.echo))
