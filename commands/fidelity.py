"""worldmodels fidelity: M measured against reality along the trained controller's episodes,
or (--held-out) along episodes of another collection, before any C."""

from __future__ import annotations

import click

from .options import (
    echo,
    force_option,
    params_option,
    progress_enabled,
    ray_option,
    round_option,
    stage_command,
    variant_option,
)


@stage_command("fidelity", "fidelity")
@variant_option
@params_option
@round_option
@click.option("--held-out", "held_out", default=None, metavar="NAME",
              help="Read M along the episodes of the collection NAME in the same data folder "
                   "(`worldmodels collect --name NAME --seed S`, another seed) instead of C's: "
                   "its NLL, done head and open-loop error on data it never trained on, before "
                   "any C; written to fidelity/held-out-NAME.json.")
@ray_option
@force_option
def fidelity_command(run, variant, params, round_number, held_out, ray_address, force):
    """How far the dream is from reality; write RESULTS/NAME/fidelity/*.json and .png."""
    from worldmodels import stages

    if held_out is not None:
        context = click.get_current_context()
        given = [f"--{name.replace('_', '-')}" for name in ("variant", "params", "ray_address")
                 if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.ClickException(f"--held-out reads M alone: {', '.join(given)} "
                                       "names a controller or its env workers")
        echo(stages.held_out(run.layout, run.config, held_out, round_number, force,
                             progress_enabled()))
        return
    echo(stages.fidelity(run.layout, run.config, run.seed, variant, params, round_number, force,
                         ray_address, progress_enabled()))
