"""worldmodels enjoy: a video of the trained agent driving real tracks."""

from __future__ import annotations

import time

import click

from commands.common import (
    common_options,
    friendly_errors,
    positive,
    progress_enabled,
    rate_option,
    setup_tensorflow,
    summary,
    variant_option,
)


@click.command("enjoy")
@common_options
@click.option("--controller", "trained_in", type=click.Choice(["dream", "real"]), default="dream",
              show_default=True, help="Which trained controller: controller-dream or -real.")
@variant_option
@click.option("--params", type=click.Choice(["best", "mean"]), default="best", show_default=True,
              help="The best candidate found, or the final CMA-ES mean.")
@click.option("--episode-index", type=int, default=0, show_default=True,
              help="The first of `evaluate`'s tracks (as it numbers them) to drive.")
@click.option("--episodes", type=int, default=1, show_default=True,
              help="Tracks to drive, from --episode-index on.")
@click.option("--track-seed", type=int,
              help="Drive the track of this env seed instead of `evaluate`'s.")
@click.option("--max-steps", type=int, help="Steps per episode (as given to `evaluate`).")
@click.option("--noise", type=float,
              help="Std of Gaussian noise added to C's actions (default 0), as `evaluate`.")
@click.option("--round", "round_number", type=int, default=0,
              help="The M and C that `iterate` kept after this round (default: the latest).")
@click.option("--gif", is_flag=True, help="Also write a GIF (every second frame, half size).")
@friendly_errors
def enjoy_command(preset, name, data_dir, results_dir, seed, trained_in, variant, params,
                  episode_index, episodes, track_seed, max_steps, noise, round_number, gif):
    """Film the agent on real tracks; write RESULTS/NAME/enjoy/*.mp4 and *.json."""
    from worldmodels.artifacts import Layout
    from worldmodels.config import get_preset, override

    started = time.time()
    positive("episodes", episodes)
    positive("max-steps", max_steps)
    positive("episode-index", episode_index, allow_zero=True)
    positive("round", round_number, allow_zero=True)
    rate_option("noise", noise)
    if track_seed is not None and episodes != 1:
        raise click.BadParameter("drives one track", param_hint="--track-seed")
    config = override(get_preset(preset).evaluate, max_steps=max_steps, noise=noise)
    layout = Layout(data_dir, results_dir, name).at_round(round_number)
    setup_tensorflow(seed, threads=1)  # one thread, as in `evaluate`'s workers
    from worldmodels.device import setup_gpu

    setup_gpu()
    from worldmodels.enjoy import enjoy

    for record in enjoy(layout, trained_in, variant, params, config, seed, episode_index,
                        episodes, track_seed, gif, progress_enabled()):
        click.echo(f"wrote {record['video']}" + (f" and {record['gif']}" if gif else ""))
        click.echo(f"track {record['seed']}: return {record['return']:.1f} in "
                   f"{record['length']} steps")
    summary(f"enjoy: {episodes} episode(s) of the controller trained in the {trained_in}",
            started)
