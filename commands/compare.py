"""worldmodels compare: a trained controller in the dream over a temperature sweep and in the
real env, side by side."""

from __future__ import annotations

import click

from .options import (
    echo,
    force_option,
    params_option,
    progress_enabled,
    stage_command,
    trained_in_option,
    variant_option,
)


@stage_command("compare", "compare")
@variant_option
@params_option
@trained_in_option
@force_option
def compare_command(run, variant, params, trained_in, force):
    """Score a trained controller in the dream at several temperatures (not the one C was
    trained at) and in the real env; write RESULTS/NAME/compare/CONTROLLER-PARAMS.{md,json,csv,
    png}."""
    from worldmodels import stages

    echo(stages.compare(run.layout, run.config, run.seed, trained_in, variant, params, force,
                        progress_enabled(), log=click.echo))
