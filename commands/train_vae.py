"""worldmodels train-vae: the ConvVAE (V), trained by streaming frames from the rollouts."""

from __future__ import annotations

from .options import echo, force_option, progress_enabled, skip_corrupt_option, stage_command


@stage_command("train-vae", "vae")
@skip_corrupt_option
@force_option
def train_vae_command(run, skip_corrupt, force):
    """Train V on DATA/NAME/rollouts; write RESULTS/NAME/vae."""
    from worldmodels import stages

    echo(stages.train_vae(run.layout, run.config, run.seed, force, skip_corrupt,
                          progress_enabled()))
