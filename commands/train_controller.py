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
    rate_option,
    ray_option,
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
@click.option("--workers", type=int,
              help="Worker processes for --where real and for the real checks (default: one "
                   "per core; with --ray-address, the cluster's CPUs).")
@click.option("--real-every", type=int,
              help="With --where dream: every K generations (and at the last), run the best "
                   "candidate so far and the CMA-ES mean in the real env; history.csv records "
                   "both beside the dream fitness. 0 turns the checks off (default from the "
                   "preset: 25 in small and paper, 0 in smoke).")
@click.option("--real-episodes", type=int,
              help="Real episodes for each of the best and the mean at every check.")
@click.option("--burn-in", type=int,
              help="Start each dream after M has read the first N real steps (z and actions) "
                   "of a collected episode, instead of from its first frame with a blank "
                   "memory (default from the preset: 0). The N steps count against "
                   "--max-steps.")
@click.option("--dropout", type=float,
              help="Dropout rate on M's output at every dream step, so the dream is random "
                   "where M knows little (default from the preset: 0, off). Meant for an M "
                   "trained with `train-rnn --dropout`.")
@click.option("--action-noise", type=float,
              help="Std of Gaussian noise added to C's actions at every dream step and in the "
                   "real checks (clipped to the action box; default 0): C is scored as it "
                   "drives with `evaluate --noise`.")
@click.option("--dropout-mask", type=click.Choice(["step", "dream"]),
              help="With --dropout: a fresh mask at every dream step (step), or one mask per "
                   "dream kept to its end (dream: one model sampled per dream, as Dropout's "
                   "Dream Land did). Default from the preset: step.")
@click.option("--pay-as-track/--no-pay-as-track", default=None,
              help="The dream pays as a real track does (at most one tile a step, 1,000 of "
                   "tiles in all, the dream ends when they are paid): no dream returns more "
                   "than a track can (default from the preset).")
@ray_option
@force_option
@friendly_errors
def train_controller_command(preset, name, data_dir, results_dir, seed, where, variant,
                             temperature, population, trials, generations, sigma, max_steps,
                             workers, real_every, real_episodes, burn_in, dropout, action_noise,
                             dropout_mask, pay_as_track, ray_address,
                             force):
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
    positive("real-every", real_every, allow_zero=True)
    positive("real-episodes", real_episodes)
    positive("burn-in", burn_in, allow_zero=True)
    rate_option("dropout", dropout)
    rate_option("action-noise", action_noise)
    config = override(get_preset(preset).controller, where=where, temperature=temperature,
                      population=population, trials=trials, generations=generations,
                      sigma=sigma, max_steps=max_steps, workers=workers,
                      real_every=real_every, real_episodes=real_episodes, burn_in=burn_in,
                      dropout=dropout, action_noise=action_noise,
                      pay_as_track=pay_as_track, dropout_mask=dropout_mask)
    if config.burn_in >= config.max_steps:
        raise click.BadParameter(f"the burn-in ({config.burn_in}) must be shorter than "
                                 f"--max-steps ({config.max_steps})", param_hint="--burn-in")
    if ray_address and not (where == "real" or config.real_every > 0):
        raise click.BadParameter("runs only with --where real or with real checks",
                                 param_hint="--ray-address")
    if config.population < 3:
        # cma's step-size adaptation fails from the second generation with 2 in high dimensions.
        raise click.BadParameter("CMA-ES needs a population of at least 3",
                                 param_hint="--population")
    layout = Layout(data_dir, results_dir, name)
    directory = layout.controller(where, variant)
    ensure_writable(directory)
    vae_manifest, rnn_manifest = check_world(layout)
    inputs = {"vae": vae_manifest["run_id"], "rnn": rnn_manifest["run_id"],
              "z_size": int(rnn_manifest["inputs"]["z_size"]),
              "hidden_size": int(rnn_manifest["config"]["hidden_size"]), "variant": variant}
    if force:
        for file in ("state.pkl", "history.csv", "history.png", "best.npy", "mean.npy"):
            (directory / file).unlink(missing_ok=True)
    manifest = begin(directory, "train-controller", to_dict(config), seed, inputs, force)
    if manifest is None:
        return "complete"
    setup_tensorflow(seed, threads=1 if where == "real" else None)
    checking = where == "dream" and config.real_every > 0
    world = load_world(layout, need_vae=(where == "real" or checking),
                       burn_in=config.burn_in if where == "dream" else 0)
    from worldmodels.controller import Controller

    spec = Controller(variant, world["z_size"], world["hidden_size"])
    dimensions = spec.param_count
    click.echo(f"C: {spec.describe()}; CMA-ES population "
               f"{config.population} x {config.trials} trials, {config.generations} generations, "
               f"scored in the {where}" + (f" at temperature {config.temperature}"
                                            if where == "dream" else "")
               + (f", action noise {config.action_noise}" if config.action_noise else "")
               + (f", dream dropout {config.dropout}"
                  if where == "dream" and config.dropout else ""))
    if checking:
        click.echo(f"real checks: best so far and mean, {config.real_episodes} episodes each, "
                   f"every {config.real_every} generations")
    history = _run(world, config, seed, directory, spec, ray_address)
    from worldmodels.figures import plot_controller_history

    plot_controller_history(history, directory / "history.png",
                            f"C ({spec.variant}) trained in the {where}", where)
    best = max(row["best_so_far"] for row in history)
    finish_manifest(directory, manifest, wall_seconds=time.time() - started,
                    parameters=dimensions, best_fitness=best, final_mean=history[-1]["mean"])
    for file in ("best.npy", "mean.npy", "history.csv", "history.png", "manifest.json"):
        click.echo(f"wrote {directory / file}")
    checks = [row for row in history if row.get("real_best") not in (None, "")]
    real = (f"; real env at generation {checks[-1]['generation']}: best "
            f"{checks[-1]['real_best']:.1f}, mean {checks[-1]['real_mean']:.1f}"
            if checks else "")
    summary(f"train-controller ({where}): best fitness {best:.1f}, last generation mean "
            f"{history[-1]['mean']:.1f}{real}", started)


def _run(world, config, seed, directory, spec, ray_address):
    from contextlib import nullcontext

    from worldmodels.evolution import evolve
    from worldmodels.scoring import DreamScorer, RealScorer
    from worldmodels.workers import make_backend

    checking = config.where == "dream" and config.real_every > 0
    backend = nullcontext()
    if config.where == "real" or checking:
        backend = make_backend(config.workers, ray_address)
    with backend:
        real = None if isinstance(backend, nullcontext) else RealScorer(
            world, backend, seed, config.env_id, config.max_steps, controller=spec,
            noise=config.action_noise)
        scorer = real if config.where == "real" else DreamScorer(
            world, config.temperature, config.max_steps, seed, spec, config.dropout,
            config.action_noise, config.pay_as_track, config.dropout_mask)
        check_fn = (lambda best, mean: real.check(best, mean, config.real_episodes)) \
            if checking else None
        return evolve(lambda c, g: scorer.fitness(c, g, config.trials), spec.param_count, config,
                      seed, directory, progress_enabled(), check_fn=check_fn)
