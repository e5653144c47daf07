"""worldmodels collect: rollouts of CarRacing-v3 with an exploration policy."""

from __future__ import annotations

from .options import echo, force_option, progress_enabled, ray_option, stage_command


@stage_command("collect", "collect", names={"env_id": ["--env"]})
@ray_option
@force_option
def collect_command(run, ray_address, force):
    """Collect rollouts into DATA/NAME/rollouts (one HDF5 file per episode)."""
    from worldmodels import stages

    echo(stages.collect(run.layout, run.config, run.seed, force, ray_address,
                        progress_enabled()))
