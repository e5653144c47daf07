"""worldmodels temperatures: the paper's table, one C trained in the dream per temperature."""

from __future__ import annotations

import click

from .options import echo, force_option, progress_enabled, stage_command


@stage_command("temperatures", "compare")
@force_option
def temperatures_command(run, force):
    """Train C only in the dream at each temperature of --temperatures, score each in its
    dream and in the real env (--episodes each), beside the paper's figures and the random
    policy; write RESULTS/NAME/temperatures/table.{md,json,png}."""
    import dataclasses

    from worldmodels import stages

    preset = dataclasses.replace(run.preset, compare=run.config)
    echo(stages.temperatures(run.layout, preset, run.seed, force, progress_enabled(),
                             log=click.echo))
