"""worldmodels train-controller: CMA-ES over the linear controller, in the dream or real env."""

from __future__ import annotations

from .options import echo, force_option, progress_enabled, ray_option, stage_command, variant_option


@stage_command("train-controller", "controller",
               names={"temperature": ["--temperature", "--train-temperature"]})
@variant_option
@ray_option
@force_option
def train_controller_command(run, variant, ray_address, force):
    """Evolve C with CMA-ES; write RESULTS/NAME/controller-WHERE[-VARIANT]. The temperature
    is the one candidates are trained at, not the sweep of `worldmodels compare`."""
    from worldmodels import stages

    echo(stages.train_controller(run.layout, run.config, run.seed, variant, force, ray_address,
                                 progress_enabled()))
