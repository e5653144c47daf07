"""worldmodels encode: mu and log-variance of every frame, the series M trains on."""

from __future__ import annotations

from .options import echo, force_option, progress_enabled, skip_corrupt_option, stage_command


@stage_command("encode")
@skip_corrupt_option
@force_option
def encode_command(run, skip_corrupt, force):
    """Encode DATA/NAME/rollouts with V into DATA/NAME/series/series.h5."""
    from worldmodels import stages

    echo(stages.encode(run.layout, run.seed, force, skip_corrupt, progress_enabled()))
