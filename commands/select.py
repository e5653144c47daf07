"""worldmodels select: C's checkpoints scored on real validation tracks; the best is kept."""

from __future__ import annotations

from .options import (
    echo,
    force_option,
    progress_enabled,
    ray_option,
    round_option,
    stage_command,
    variant_option,
)


@stage_command("select", "select")
@variant_option
@round_option
@ray_option
@force_option
def select_command(run, variant, round_number, ray_address, force):
    """Score the CMA-ES means C passed through (and its kept best) on real validation tracks;
    write the best as RESULTS/NAME/controller-dream/selected.npy, with selection.json and .png.
    `evaluate --params selected` then scores it as "dream-trained, real-selected"."""
    from worldmodels import stages

    echo(stages.select(run.layout, run.config, run.seed, variant, round_number, force,
                       ray_address, progress_enabled()))
