"""worldmodels enjoy: a video of the trained agent driving real tracks."""

from __future__ import annotations

import click

from .options import (
    agent_option,
    agent_run,
    echo,
    params_option,
    progress_enabled,
    round_option,
    stage_command,
    trained_in_option,
    variant_option,
)


@stage_command("enjoy", "evaluate", skip=("episodes", "temperature", "workers"))
@trained_in_option
@variant_option
@params_option
@click.option("--episode-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="The first of `evaluate`'s tracks (as it numbers them) to drive.")
@click.option("--episodes", "episode_count", type=click.IntRange(min=1, max=1000), default=1,
              show_default=True, help="Tracks to drive, from --episode-index on.")
@click.option("--track-seed", type=click.IntRange(min=0),
              help="Drive the track of this env seed instead of `evaluate`'s.")
@round_option
@click.option("--gif", is_flag=True, help="Also write a GIF (every second frame, half size).")
@agent_option
def enjoy_command(run, trained_in, variant, params, episode_index, episode_count, track_seed,
                  round_number, gif, agent):
    """Film the agent on real tracks; write RESULTS/NAME/enjoy/*.mp4 and *.json. With --agent
    agent.tar, the agent of that bundle, into RESULTS/agent/enjoy/."""
    from worldmodels import stages

    if agent:
        with agent_run(run, agent) as (layout, index):
            echo(stages.enjoy(layout, run.config, run.seed, index["trained_in"],
                              index["variant"], params, episode_index, episode_count,
                              track_seed, round_number, gif, progress_enabled()))
        return
    echo(stages.enjoy(run.layout, run.config, run.seed, trained_in, variant, params,
                      episode_index, episode_count, track_seed, round_number, gif,
                      progress_enabled()))
