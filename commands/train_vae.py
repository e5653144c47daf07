"""worldmodels train-vae: the ConvVAE (V), trained by streaming frames from the rollouts."""

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
    setup_tensorflow,
    skip_corrupt_option,
    summary,
)


@click.command("train-vae")
@common_options
@click.option("--epochs", type=int, help="Passes over the rollouts.")
@click.option("--batch-size", type=int, help="Frames per batch.")
@click.option("--z-size", type=int, help="Latent size (32 in the paper).")
@click.option("--learning-rate", type=float, help="Adam learning rate.")
@click.option("--max-episodes", type=int, help="Train on at most this many episodes.")
@click.option("--shuffle-episodes", type=int,
              help="Episodes read and shuffled together (bounds memory; default from preset).")
@skip_corrupt_option
@force_option
@friendly_errors
def train_vae_command(preset, name, data_dir, results_dir, seed, epochs, batch_size, z_size,
                      learning_rate, max_episodes, shuffle_episodes, skip_corrupt, force):
    """Train V on DATA/NAME/rollouts; write RESULTS/NAME/vae."""
    from worldmodels import checkpoint
    from worldmodels.artifacts import Layout, ensure_writable, finish_manifest, require_manifest
    from worldmodels.config import get_preset, override, to_dict
    from worldmodels.store import episode_length, require_episodes, validate_episodes

    started = time.time()
    for option, value in (("epochs", epochs), ("batch-size", batch_size), ("z-size", z_size),
                          ("learning-rate", learning_rate), ("max-episodes", max_episodes),
                          ("shuffle-episodes", shuffle_episodes)):
        positive(option, value)
    config = override(get_preset(preset).vae, epochs=epochs, batch_size=batch_size,
                      z_size=z_size, learning_rate=learning_rate, max_episodes=max_episodes,
                      shuffle_episodes=shuffle_episodes)
    layout = Layout(data_dir, results_dir, name)
    paths = require_episodes(layout.rollouts)
    rollouts = require_manifest(layout.rollouts, "rollouts", "collect")
    if config.max_episodes:
        paths = paths[: config.max_episodes]
    paths = validate_episodes(paths, skip_corrupt, warn=click.echo)
    ensure_writable(layout.vae)
    setup_tensorflow(seed)
    from worldmodels.vae import (
        ConvVAE,
        read_episode,
        reconstruction_grid,
        train_vae,
    )

    total_frames = sum(episode_length(p) + 1 for p in paths)
    inputs = {"rollouts": rollouts["run_id"], "episodes": len(paths), "frames": total_frames}
    if force:
        checkpoint.clear(layout.vae)
    manifest = begin(layout.vae, "train-vae", to_dict(config), seed, inputs, force)
    if manifest is None:
        return "complete"
    model = ConvVAE(config.z_size)
    click.echo(f"V: ConvVAE with {model.count_params():,} parameters, z={config.z_size}, "
               f"{total_frames:,} frames from {len(paths)} episodes")
    history = train_vae(model, paths, config, seed, layout.vae, total_frames,
                        progress=progress_enabled())
    frames = read_episode(paths[0])["frames"]
    picks = frames[:: max(1, len(frames) // 8)][:8]
    reconstruction_grid(model, picks, layout.vae / "reconstructions.png")
    last = history[-1]
    finish_manifest(layout.vae, manifest, wall_seconds=time.time() - started,
                    parameters=model.count_params(), **last)
    for file in ("vae.weights.h5", "manifest.json", "metrics.csv", "reconstructions.png"):
        click.echo(f"wrote {layout.vae / file}")
    summary(f"train-vae: {config.epochs} epochs, loss {last['loss']:.1f} "
            f"(reconstruction {last['reconstruction']:.1f}, kl {last['kl']:.1f})", started)
