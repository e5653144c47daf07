"""worldmodels iterate: rounds of collect with C + noise, re-encode, train M further, evolve C
further in the new dream (the paper's iterative training)."""

from __future__ import annotations

import time

import click

from commands.common import (
    common_options,
    friendly_errors,
    positive,
    progress_enabled,
    rate_option,
    ray_option,
    setup_tensorflow,
    summary,
)


@click.command("iterate")
@common_options
@click.option("--rounds", type=int, help="Rounds in all (a re-run with more adds rounds).")
@click.option("--episodes", type=int, help="Episodes collected with C + noise per round.")
@click.option("--noise", type=float,
              help="Standard deviation of the Gaussian noise added to C's actions.")
@click.option("--rnn-epochs", type=int, help="Further epochs of M per round, on all data.")
@click.option("--generations", type=int, help="Further CMA-ES generations of C per round.")
@click.option("--workers", type=int, help="Worker processes (default: one per core).")
@ray_option
@click.pass_context
@friendly_errors
def iterate_command(context, preset, name, data_dir, results_dir, seed, rounds, episodes,
                    noise, rnn_epochs, generations, workers, ray_address):
    """Iterative training of an experiment that has run the pipeline (V, M and C in the
    dream): each round adds episodes driven by C + noise to DATA/NAME/rollouts, re-encodes,
    trains M further and evolves C further in its dream. Writes RESULTS/NAME/iterate/rounds.*
    and keeps each round's M and C in iterate/round-N/; then `worldmodels evaluate` scores the
    final C on unseen tracks (`--round N`: round N's)."""
    from commands.cli import main
    from commands.pipeline import _defaults
    from worldmodels import iterate as it
    from worldmodels.artifacts import Layout
    from worldmodels.config import get_preset, override

    started = time.time()
    for option, value in (("rounds", rounds), ("episodes", episodes),
                          ("rnn-epochs", rnn_epochs), ("generations", generations)):
        positive(option, value)
    positive("workers", workers)
    rate_option("noise", noise)
    config = override(get_preset(preset).iterate, rounds=rounds, episodes=episodes,
                      noise=noise, rnn_epochs=rnn_epochs, generations=generations)
    if config.rounds == 0:
        raise click.BadParameter(f"the {preset} preset has no rounds of iterative training: "
                                 "give their number", param_hint="--rounds")
    layout = Layout(data_dir, results_dir, name)
    it.check_ready(layout)
    progress = it.load_progress(layout, config, seed)
    it.check_controller(layout, progress)
    if len(progress["rounds"]) >= config.rounds:
        click.echo(f"iterate: {len(progress['rounds'])} rounds complete in "
                   f"{it.rounds_path(layout)}; ask for more with --rounds")
        return "complete"
    setup_tensorflow(seed)
    show = progress_enabled()
    common = ["--preset", preset, "--name", name, "--data-dir", str(data_dir),
              "--results-dir", str(results_dir), "--seed", str(seed)]
    while len(progress["rounds"]) < config.rounds:
        number = len(progress["rounds"]) + 1
        current = progress["current"] or {"round": number, "step": "collect",
                                          "started": time.time()}
        progress["current"] = current
        row = current.setdefault("row", {"round": number})
        for step in it.STEPS[it.STEPS.index(current["step"]):]:
            click.echo(f"== round {number}/{config.rounds}: {step}")
            step_started = time.time()
            if step == "collect":
                result = it.collect_round(layout, config, seed, progress, number, workers,
                                          ray_address, show)
                row.update(collected=result["collected"],
                           collect_return=round(result["mean_return"], 1))
            elif step == "encode":
                encode = main.get_command(context, "encode")
                context.invoke(encode, **dict(_defaults(context, encode, common), force=True))
            elif step == "rnn":
                last = it.train_rnn_round(layout, config, seed, show)
                row.update(rnn_loss=round(last["loss"], 3), rnn_reward=round(last["reward"], 3))
            else:
                fresh = current.get("controller_started") is None
                current["controller_started"] = time.time()
                it.save_progress(layout, progress)
                result = it.controller_round(layout, config, fresh, ray_address, show)
                row.update({k: (round(v, 1) if v is not None else None)
                            for k, v in result.items()})
                progress["controller_run_id"] = it.controller_run_id(layout)
                it.keep_round(layout, number)
            row[f"{step}_seconds"] = round(time.time() - step_started, 1)
            following = it.STEPS.index(step) + 1
            current["step"] = it.STEPS[following] if following < len(it.STEPS) else "done"
            it.save_progress(layout, progress)
        row["wall_seconds"] = round(time.time() - current["started"], 1)
        progress["rounds"].append(row)
        progress["current"] = None
        it.save_progress(layout, progress)
        click.echo(f"round {number}: collection with C + noise {row['collect_return']:.1f} "
                   f"over {row['collected']} episodes; dream best {row['best_fitness']:.1f}"
                   + (f"; real check best {row['real_best']:.1f}, mean {row['real_mean']:.1f}"
                      if row.get("real_best") is not None else ""))
    click.echo(f"wrote {it.rounds_path(layout)}")
    summary(f"iterate: {len(progress['rounds'])} rounds in {layout.experiment}", started)
