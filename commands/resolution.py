"""worldmodels resolution: does the dream rank controllers as the real env does?"""

from __future__ import annotations

import click

from .options import (
    echo,
    force_option,
    progress_enabled,
    ray_option,
    round_option,
    stage_command,
    variant_option,
)


@stage_command("resolution", "resolution")
@variant_option
@round_option
@click.option("--judge-round", type=click.IntRange(min=1), default=None,
              help="Dream the candidates in the M `iterate` kept after this round (one that "
                   "C's later rounds were not evolved in) instead; written to "
                   "resolution-judge-round-N.json, the real scores taken from resolution.json.")
@ray_option
@force_option
def resolution_command(run, variant, round_number, judge_round, ray_address, force):
    """Score C's checkpoints and a fresh population around its final mean on validation tracks
    of their own and in the dream C was trained in (under several dream seeds); write the rank
    correlation between the two orders (Spearman, ± over dream seeds; Kendall beside it) to
    RESULTS/NAME/controller-dream/resolution.json and .png."""
    from worldmodels import stages

    echo(stages.resolution(run.layout, run.config, run.seed, variant, round_number, force,
                           ray_address, progress_enabled(), judge_round=judge_round or 0))
