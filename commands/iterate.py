"""worldmodels iterate: rounds of collect with C + noise, re-encode, train M further, evolve C
further in the new dream (the paper's iterative training)."""

from __future__ import annotations

import click

from worldmodels.config import CollectConfig, range_of

from .options import Number, echo, progress_enabled, ray_option, stage_command


@stage_command("iterate", "iterate")
@click.option("--workers", type=Number(int, range_of(CollectConfig, "workers")),
              help="Worker processes (default: one per core).")
@ray_option
def iterate_command(run, workers, ray_address):
    """Iterative training of an experiment that has run the pipeline (V, M and C in the
    dream): each round adds episodes driven by C + noise to DATA/NAME/rollouts, re-encodes,
    trains M further and evolves C further in its dream. Writes RESULTS/NAME/iterate/rounds.*
    and keeps each round's M and C in iterate/round-N/; then `worldmodels evaluate` scores the
    final C on unseen tracks (`--round N`: round N's). A re-run with more --rounds adds rounds."""
    from worldmodels import stages

    echo(stages.iterate(run.layout, run.config, run.seed, workers, ray_address,
                        progress_enabled(), log=click.echo))
