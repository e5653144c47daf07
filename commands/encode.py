"""worldmodels encode: mu and log-variance of every frame, the series M trains on."""

from __future__ import annotations

import time

import click

from commands.common import (
    begin,
    common_options,
    force_option,
    friendly_errors,
    progress_enabled,
    setup_tensorflow,
    skip_corrupt_option,
    summary,
)


@click.command("encode")
@common_options
@skip_corrupt_option
@force_option
@friendly_errors
def encode_command(preset, name, data_dir, results_dir, seed, skip_corrupt, force):
    """Encode DATA/NAME/rollouts with V into DATA/NAME/series/series.h5."""
    from worldmodels.artifacts import Layout, ensure_writable, finish_manifest, require_manifest
    from worldmodels.store import require_episodes, validate_episodes

    started = time.time()
    layout = Layout(data_dir, results_dir, name)
    paths = require_episodes(layout.rollouts)
    rollouts = require_manifest(layout.rollouts, "rollouts", "collect")
    vae = require_manifest(layout.vae, "trained V", "train-vae")
    paths = validate_episodes(paths, skip_corrupt, warn=click.echo)
    ensure_writable(layout.series_dir)
    setup_tensorflow(seed)
    from worldmodels.vae import encode_series, load_vae

    model = load_vae(layout.vae, vae["config"]["z_size"])
    inputs = {"rollouts": rollouts["run_id"], "vae": vae["run_id"], "episodes": len(paths)}
    if force:
        layout.series.with_name(layout.series.name + ".partial").unlink(missing_ok=True)
    manifest = begin(layout.series_dir, "encode", {"z_size": model.z_size}, seed, inputs, force)
    if manifest is None:
        return "complete"
    result = encode_series(model, paths, layout.series, vae["run_id"],
                           progress=progress_enabled())
    finish_manifest(layout.series_dir, manifest, wall_seconds=time.time() - started, **result)
    click.echo(f"wrote {layout.series}")
    summary(f"encode: {result['episodes']} episodes, {result['frames']:,} frames", started)
