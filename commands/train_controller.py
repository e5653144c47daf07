"""worldmodels train-controller: CMA-ES over the linear controller, in the dream or real env."""

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
    summary,
    variant_option,
)


@click.command("train-controller")
@common_options
@click.option("--where", type=click.Choice(["dream", "real"]), default="dream", show_default=True,
              help="Score every candidate inside M (dream) or in the gymnasium env (real).")
@variant_option
@click.option("--temperature", "--train-temperature", "temperature", type=float,
              help="Dream temperature tau that candidates are trained at (default from the "
                   "preset). Not the sweep of `worldmodels compare`, which scores a trained "
                   "controller at several temperatures.")
@click.option("--population", type=int, help="CMA-ES population size.")
@click.option("--trials", type=int, help="Rollouts per candidate.")
@click.option("--generations", type=int, help="CMA-ES generations.")
@click.option("--sigma", type=float, help="Initial CMA-ES step size.")
@click.option("--max-steps", type=int, help="Steps per rollout.")
@click.option("--workers", type=int, help="Env processes for --where real.")
@force_option
@friendly_errors
def train_controller_command(preset, name, data_dir, results_dir, seed, where, variant,
                             temperature, population, trials, generations, sigma, max_steps,
                             workers, force):
    """Evolve C with CMA-ES; write RESULTS/NAME/controller-WHERE[-VARIANT]."""
    from worldmodels.artifacts import Layout, ensure_writable, finish_manifest
    from worldmodels.config import get_preset, override, to_dict
    from worldmodels.models import check_world, load_world

    started = time.time()
    for option, value in (("temperature", temperature), ("population", population),
                          ("trials", trials), ("generations", generations), ("sigma", sigma),
                          ("max-steps", max_steps)):
        positive(option, value)
    positive("workers", workers)
    config = override(get_preset(preset).controller, where=where, temperature=temperature,
                      population=population, trials=trials, generations=generations,
                      sigma=sigma, max_steps=max_steps, workers=workers)
    if config.population < 2:
        raise click.BadParameter("CMA-ES needs a population of at least 2",
                                 param_hint="--population")
    layout = Layout(data_dir, results_dir, name)
    directory = layout.controller(where, variant)
    ensure_writable(directory)
    vae_manifest, rnn_manifest = check_world(layout)
    inputs = {"vae": vae_manifest["run_id"], "rnn": rnn_manifest["run_id"],
              "z_size": int(rnn_manifest["inputs"]["z_size"]),
              "hidden_size": int(rnn_manifest["config"]["hidden_size"]), "variant": variant}
    if force:
        for file in ("state.pkl", "history.csv", "best.npy", "mean.npy"):
            (directory / file).unlink(missing_ok=True)
    manifest = begin(directory, "train-controller", to_dict(config), seed, inputs, force)
    if manifest is None:
        return "complete"
    setup_tensorflow(seed)
    world = load_world(layout, need_vae=(where == "real"))
    from worldmodels.controller import Controller

    spec = Controller(variant, world["z_size"], world["hidden_size"])
    dimensions = spec.param_count
    click.echo(f"C: {spec.describe()}; CMA-ES population "
               f"{config.population} x {config.trials} trials, {config.generations} generations, "
               f"scored in the {where}" + (f" at temperature {config.temperature}"
                                            if where == "dream" else ""))
    history = _run(world, config, seed, directory, spec)
    best = max(row["best_so_far"] for row in history)
    finish_manifest(directory, manifest, wall_seconds=time.time() - started,
                    parameters=dimensions, best_fitness=best, final_mean=history[-1]["mean"])
    for file in ("best.npy", "mean.npy", "history.csv", "manifest.json"):
        click.echo(f"wrote {directory / file}")
    summary(f"train-controller ({where}): best fitness {best:.1f}, last generation mean "
            f"{history[-1]['mean']:.1f}", started)


def _run(world, config, seed, directory, spec):
    from worldmodels.evolution import evolve
    from worldmodels.scoring import DreamScorer, RealScorer

    progress = progress_enabled()
    if config.where == "dream":
        scorer = DreamScorer(world, config.temperature, config.max_steps, seed, spec)
        return evolve(lambda c, g: scorer.fitness(c, g, config.trials), spec.param_count, config,
                      seed, directory, progress)
    from worldmodels.env import EnvPool, default_workers

    with EnvPool(config.env_id, config.max_steps, default_workers(config.workers)) as pool:
        scorer = RealScorer(world, pool, seed, controller=spec)
        return evolve(lambda c, g: scorer.fitness(c, g, config.trials), spec.param_count, config,
                      seed, directory, progress)
