"""worldmodels evaluate: a trained agent (V + M + C) in the real env or in the dream."""

from __future__ import annotations

from pathlib import Path

import click

from .options import (
    agent_option,
    agent_run,
    echo,
    force_option,
    params_option,
    progress_enabled,
    ray_option,
    round_option,
    stage_command,
    trained_in_option,
    variant_option,
)


@stage_command("evaluate", "evaluate")
@click.option("--where", type=click.Choice(["real", "dream"]), default="real", show_default=True,
              help="Run the agent in the gymnasium env (real) or inside M (dream).")
@trained_in_option
@variant_option
@params_option
@round_option
@agent_option
@click.option("--judge", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --where dream: dream C in the M of the experiment of this name in "
                   "that results root (the same data and V) instead of its own; written to "
                   "*-judge-RUNID.json. Does C's dream score hold in an M it was not evolved in?")
@ray_option
@force_option
def evaluate_command(run, where, trained_in, variant, params, round_number, agent, judge,
                     ray_address, force):
    """Score a trained agent; write RESULTS/NAME/evaluate/*.json (--noise: *-noiseSTD.json).
    An evaluation of the same controller with other options is replaced only with --force.
    With --agent agent.tar, the agent of that bundle, into RESULTS/agent/evaluate/."""
    from worldmodels import stages

    if agent and judge:
        raise click.ClickException("--judge scores the experiment's own C, not a bundle's")
    if agent:
        with agent_run(run, agent) as (layout, index):
            echo(stages.evaluate(layout, run.config, run.seed, where, index["trained_in"],
                                 index["variant"], params, round_number, force, ray_address,
                                 progress_enabled()))
        return
    echo(stages.evaluate(run.layout, run.config, run.seed, where, trained_in, variant, params,
                         round_number, force, ray_address, progress_enabled(), judge=judge))
