"""worldmodels show: pictures of V, M and C under RESULTS/NAME/figures."""

from __future__ import annotations

import time

import click

from commands.common import (
    common_options,
    friendly_errors,
    positive,
    setup_tensorflow,
    summary,
    variant_option,
)

REAL_STEPS = 300  # length of the fresh real episode behind V's and M's pictures


@click.command("show")
@common_options
@variant_option
@click.option("--controller", "trained_in", type=click.Choice(["dream", "real"]), default="dream",
              show_default=True, help="Which trained controller drives the dream GIF.")
@click.option("--params", type=click.Choice(["best", "mean"]), default="best", show_default=True,
              help="The best candidate found, or the final CMA-ES mean.")
@click.option("--temperature", type=float,
              help="Dream temperature of the GIF (default: the one C was trained at).")
@friendly_errors
def show_command(preset, name, data_dir, results_dir, seed, variant, trained_in, params,
                 temperature):
    """Draw V's reconstructions and latent traversal, M's open-loop predictions, a GIF of a
    dream episode driven by C, and the training curves of V, M and C, into
    RESULTS/NAME/figures. Parts whose stage has not run are skipped with the command to run."""
    from worldmodels.artifacts import Layout, ensure_writable
    from worldmodels.config import get_preset
    from worldmodels.errors import WorldModelsError
    from worldmodels.show import require_vae

    started = time.time()
    positive("temperature", temperature)
    layout = Layout(data_dir, results_dir, name)
    vae_manifest = require_vae(layout)
    directory = layout.experiment / "figures"
    ensure_writable(directory)
    setup_tensorflow(seed)
    from worldmodels import show
    from worldmodels.models import check_world, load_world
    from worldmodels.vae import load_vae

    collect = get_preset(preset).collect
    episode = show.real_episode(collect.env_id, collect.policy,
                                min(collect.max_steps, REAL_STEPS), seed)
    try:
        check_world(layout)
        world = load_world(layout, need_vae=True)
    except WorldModelsError as error:
        click.echo(f"skipped M's and C's pictures: {error}")
        world = None
    vae = world["vae"] if world else load_vae(layout.vae, vae_manifest["config"]["z_size"])
    written = show.draw_vae(vae, episode["frames"], directory)
    if world:
        written.append(show.draw_open_loop(vae, world["rnn"], episode, directory))
        written += _dream_gif(layout, world, variant, trained_in, params, temperature, seed,
                              directory)
    written += show.draw_curves(layout, directory)
    for path in written:
        click.echo(f"wrote {path}")
    summary(f"show: {len(written)} figures in {directory}", started)


def _dream_gif(layout, world, variant, trained_in, params, temperature, seed, directory):
    from worldmodels.artifacts import read_json
    from worldmodels.compare import output_stem
    from worldmodels.controller import Controller
    from worldmodels.evaluation import load_controller
    from worldmodels.show import describe_dream, draw_dream

    controller_dir = layout.controller(trained_in, variant)
    manifest_path = controller_dir / "manifest.json"
    if not manifest_path.exists() or read_json(manifest_path).get("status") != "complete":
        click.echo(f"skipped the dream GIF: no trained controller in {controller_dir} (run "
                   f"`worldmodels train-controller --where {trained_in} --variant {variant}`)")
        return []
    config = read_json(manifest_path)["config"]
    spec = Controller(variant, world["z_size"], world["hidden_size"])
    flat = load_controller(controller_dir / f"{params}.npy", spec)
    temperature = temperature or config.get("temperature", 1.0)
    path = directory / f"dream-{output_stem(trained_in, variant, params)}.gif"
    path, record = draw_dream(world, spec, flat, temperature, config["max_steps"], seed, path)
    click.echo(f"dream GIF: {describe_dream(record)}")
    return [path, path.with_suffix(".json")]
