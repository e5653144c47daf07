"""worldmodels evaluate: a trained agent (V + M + C) in the real env or in the dream."""

from __future__ import annotations

import time

import click

from commands.common import (
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


@click.command("evaluate")
@common_options
@click.option("--where", type=click.Choice(["real", "dream"]), default="real", show_default=True,
              help="Run the agent in the gymnasium env (real) or inside M (dream).")
@click.option("--controller", "trained_in", type=click.Choice(["dream", "real"]), default="dream",
              show_default=True, help="Which trained controller: controller-dream or -real.")
@variant_option
@click.option("--params", type=click.Choice(["best", "mean"]), default="best", show_default=True,
              help="The best candidate found, or the final CMA-ES mean.")
@click.option("--episodes", type=int, help="Episodes (default 100).")
@click.option("--max-steps", type=int, help="Steps per episode.")
@click.option("--temperature", type=float, help="Dream temperature (with --where dream).")
@click.option("--workers", type=int,
              help="Worker processes (with --where real; default: one per core, or with "
                   "--ray-address the cluster's CPUs).")
@click.option("--env", "env_id", help="Gymnasium env id (default CarRacing-v3).")
@click.option("--noise", type=float,
              help="Std of Gaussian noise added to C's actions (with --where real; default 0): "
                   "C as `iterate` collects with it. Written to its own file, *-noiseSTD.json.")
@click.option("--round", "round_number", type=int, default=0,
              help="The M and C that `iterate` kept after this round (default: the latest).")
@ray_option
@force_option
@friendly_errors
def evaluate_command(preset, name, data_dir, results_dir, seed, where, trained_in, variant,
                     params, episodes, max_steps, temperature, workers, env_id, noise,
                     round_number, ray_address, force):
    """Score a trained agent; write RESULTS/NAME/evaluate/*.json."""
    from worldmodels.artifacts import (
        Layout,
        ensure_writable,
        read_json,
        require_manifest,
        write_json,
    )
    from worldmodels.config import get_preset, override, to_dict
    from worldmodels.env import check_env_id

    started = time.time()
    for option, value in (("episodes", episodes), ("max-steps", max_steps),
                          ("temperature", temperature)):
        positive(option, value)
    positive("workers", workers)
    rate_option("noise", noise)
    if noise and where != "real":
        raise click.BadParameter("runs only with --where real", param_hint="--noise")
    if ray_address and where != "real":
        raise click.BadParameter("runs only with --where real", param_hint="--ray-address")
    config = override(get_preset(preset).evaluate, episodes=episodes, max_steps=max_steps,
                      temperature=temperature, workers=workers, env_id=env_id, noise=noise)
    check_env_id(config.env_id)
    if round_number < 0:
        raise click.BadParameter(f"expected a round number ≥ 1, got {round_number}",
                                 param_hint="--round")
    layout = Layout(data_dir, results_dir, name).at_round(round_number)
    if round_number and not layout.runs.is_dir():
        raise click.BadParameter(f"`iterate` kept no round {round_number} in {layout.runs}",
                                 param_hint="--round")
    directory = layout.controller(trained_in, variant)
    controller = require_manifest(directory, f"controller trained in the {trained_in}",
                                  f"train-controller --where {trained_in} --variant {variant}")
    path = layout.evaluation(where, trained_in, variant, params, config.noise)
    partial = path.with_name(path.stem + ".partial.json")
    ensure_writable(layout.evaluations)
    if path.exists() and not force:
        old = read_json(path)
        # Complete only for the same controller: `iterate` trains C (and M) further.
        # (evaluations written before --noise existed had none)
        if ({"noise": 0.0, **old.get("config", {})} == to_dict(config) and old.get("seed") == seed
                and old.get("controller_run_id") == controller.get("run_id")):
            click.echo(f"evaluate: complete in {path} ({old['mean']:.1f} ± {old['std']:.1f}); "
                       "add --force to redo it")
            return "complete"
    if force:
        partial.unlink(missing_ok=True)
    setup_tensorflow(seed)
    from worldmodels.evaluation import evaluate

    result = evaluate(layout, controller, directory, params, where, config, seed,
                      progress_enabled(), partial_path=partial, variant=variant,
                      ray_address=ray_address)
    result.update(config=to_dict(config), seed=seed, wall_seconds=time.time() - started,
                  **({"round": round_number} if round_number else {}))
    write_json(path, result)
    partial.unlink(missing_ok=True)
    click.echo(f"wrote {path}")
    summary(f"evaluate ({where}, {result['episodes']} episodes"
            + (f", action noise {config.noise:g}" if config.noise else "") + "): "
            f"{result['mean']:.1f} ± {result['std']:.1f}", started)
