"""worldmodels collect: rollouts of CarRacing-v3 with an exploration policy."""

from __future__ import annotations

import time

import click

from commands.common import (
    begin,
    common_options,
    force_option,
    friendly_errors,
    positive,
    progress_enabled,
    ray_option,
    summary,
)
from worldmodels.policies import POLICIES


@click.command("collect")
@common_options
@click.option("--episodes", type=int, help="Episodes to collect (overrides the preset).")
@click.option("--max-steps", type=int, help="Time limit per episode.")
@click.option("--policy", type=click.Choice(list(POLICIES)),
              help="Exploration policy (default: the preset's; pilot is a noisy road follower, "
                   "rally the same with varied gas and braking).")
@click.option("--workers", type=int, help="Worker processes (default: one per core).")
@click.option("--env", "env_id", help="Gymnasium env id (default CarRacing-v3).")
@ray_option
@force_option
@friendly_errors
def collect_command(preset, name, data_dir, results_dir, seed, episodes, max_steps, policy,
                    workers, env_id, ray_address, force):
    """Collect rollouts into DATA/NAME/rollouts (one HDF5 file per episode)."""
    from worldmodels.config import get_preset, override, to_dict
    from worldmodels.env import check_env_id

    started = time.time()
    positive("episodes", episodes)
    positive("max-steps", max_steps)
    positive("workers", workers)
    config = override(get_preset(preset).collect, episodes=episodes, max_steps=max_steps,
                      policy=policy, workers=workers, env_id=env_id)
    check_env_id(config.env_id)
    from worldmodels.artifacts import Layout, ensure_writable, finish_manifest
    from worldmodels.collect import collect
    from worldmodels.store import list_episodes

    layout = Layout(data_dir, results_dir, name)
    ensure_writable(layout.rollouts)
    if force:
        for path in list_episodes(layout.rollouts):
            path.unlink()
    manifest = begin(layout.rollouts, "collect", to_dict(config), seed, {}, force)
    if manifest is None:
        return "complete"
    result = collect(layout.rollouts, config, seed, progress=progress_enabled(),
                     ray_address=ray_address)
    finish_manifest(layout.rollouts, manifest, wall_seconds=time.time() - started, **result)
    click.echo(f"wrote {layout.rollouts}/episode_*.h5")
    summary(f"collect: {result['episodes']} episodes, mean return {result['mean_return']:.1f}, "
            f"mean length {result['mean_length']:.0f}", started)
