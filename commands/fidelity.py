"""worldmodels fidelity: M measured against reality along the trained controller's episodes."""

from __future__ import annotations

import time

import click

from commands.common import (
    common_options,
    force_option,
    friendly_errors,
    positive,
    progress_enabled,
    ray_option,
    setup_tensorflow,
    summary,
    variant_option,
)


@click.command("fidelity")
@common_options
@variant_option
@click.option("--params", type=click.Choice(["best", "mean"]), default="best", show_default=True,
              help="Which of the controller's saved parameters to measure with.")
@click.option("--episodes", type=int, help="Real episodes M is measured along.")
@click.option("--dream-episodes", type=int, help="Dreams of the same controller.")
@click.option("--workers", type=int, help="Env worker processes (default: one per core).")
@click.option("--round", "round_number", type=click.IntRange(min=0), default=0,
              help="The M and C that `iterate` kept after this round (default: the latest).")
@ray_option
@force_option
@friendly_errors
def fidelity_command(preset, name, data_dir, results_dir, seed, variant, params, episodes,
                     dream_episodes, workers, round_number, ray_address, force):
    """How far the dream is from reality; write RESULTS/NAME/fidelity/*.json and .png."""
    from worldmodels.artifacts import Layout
    from worldmodels.config import get_preset, override
    from worldmodels.fidelity import run_fidelity

    started = time.time()
    for option, value in (("episodes", episodes), ("dream-episodes", dream_episodes),
                          ("workers", workers)):
        positive(option, value)
    config = override(get_preset(preset).fidelity, episodes=episodes,
                      dream_episodes=dream_episodes, workers=workers)
    layout = Layout(data_dir, results_dir, name).at_round(round_number)
    setup_tensorflow(seed)
    path, result, ran = run_fidelity(layout, config, seed, params, variant, force,
                                     progress_enabled(), ray_address)
    s = result["summary"]
    if not ran:
        click.echo(f"fidelity: complete in {path}; add --force to redo it")
    else:
        click.echo(f"wrote {path}\nwrote {path.with_suffix('.png')}")
    summary(f"fidelity: real {s['real_mean']:.1f} ± {s['real_std']:.1f}, dream "
            f"{s['dream_mean']:.1f} ± {s['dream_std']:.1f} ({100 * s['dreams_above_possible']:.0f}"
            f" % of dreams pay more than a track can); M predicts "
            f"{s['predicted_return_on_real_path']:.1f} along the real episodes", started)
