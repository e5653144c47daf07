"""worldmodels fidelity: M measured against reality along the trained controller's episodes."""

from __future__ import annotations

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
@ray_option
@force_option
def fidelity_command(run, variant, params, round_number, ray_address, force):
    """How far the dream is from reality; write RESULTS/NAME/fidelity/*.json and .png."""
    from worldmodels import stages

    echo(stages.fidelity(run.layout, run.config, run.seed, variant, params, round_number, force,
                         ray_address, progress_enabled()))
