"""Options shared by every stage, and the conversion of library errors to one-line errors."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import click

from worldmodels.config import PRESET_NAMES


def common_options(function):
    """--preset, --name, --data-dir, --results-dir, --seed."""
    options = [
        click.option("--preset", type=click.Choice(PRESET_NAMES), default="small",
                     show_default=True, help="Scale: smoke (tests), small (2-core CPU), paper."),
        click.option("--name", default="default", show_default=True,
                     help="Experiment name: data in DATA/NAME, results in RESULTS/NAME."),
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("data"), show_default=True, help="Root of rollouts and series."),
        click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("results"), show_default=True,
                     help="Root of models, logs and scores."),
        click.option("--seed", type=int, default=0, show_default=True, help="Run seed."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def friendly_errors(function):
    """Turn WorldModelsError (and ValueError from configs) into a one-line click error."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from worldmodels.errors import WorldModelsError

        try:
            return function(*args, **kwargs)
        except (WorldModelsError, ValueError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def setup_tensorflow(seed: int, threads: int | None = None) -> None:
    """Quiet TensorFlow's start-up logs and seed Python, NumPy and TensorFlow. ``threads``
    limits TensorFlow's thread pools of this process: `train-controller --where real` uses 1,
    because its work runs in worker processes (each with TensorFlow on one thread, see
    ``worldmodels.agent``) and idle pool threads here would only take CPU from them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass  # TensorFlow already started in this process (tests run stages in-process)
    keras.utils.set_random_seed(seed)


def positive(name: str, value, allow_zero: bool = False) -> None:
    """Reject out-of-range numeric options with a one-line error."""
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise click.BadParameter(f"must be {bound}, got {value}", param_hint=f"--{name}")


def rate_option(name: str, value) -> None:
    """Reject a rate (dropout) outside [0, 1) with a one-line error."""
    if value is not None and not 0 <= value < 1:
        raise click.BadParameter(f"must be in [0, 1), got {value}", param_hint=f"--{name}")


def summary(message: str, started: float) -> None:
    """The one-line summary every stage ends with."""
    click.echo(f"{message} ({time.time() - started:.1f} s)")


def progress_enabled() -> bool:
    """Progress bars unless WORLDMODELS_NO_PROGRESS is set (tests)."""
    return not os.environ.get("WORLDMODELS_NO_PROGRESS")


force_option = click.option("--force", is_flag=True,
                            help="Redo the stage even if its outputs are complete.")
variant_option = click.option(
    "--variant", type=click.Choice(["zh", "z", "z-hidden"]), default="zh", show_default=True,
    help="Controller inputs, as in the paper's CarRacing table: zh = [z, h] (full world "
         "model), z = V only, z-hidden = V only with 40 tanh hidden units.")
ray_option = click.option(
    "--ray-address", metavar="ADDRESS",
    help="Run the episodes on Ray instead of local worker processes: 'local' starts a private "
         "Ray instance on this machine, 'auto' joins the cluster this machine belongs to, or "
         "give a cluster's address. Needs `pip install 'worldmodels[ray]'` on every node.")
skip_corrupt_option = click.option("--skip-corrupt", is_flag=True,
                                   help="Leave out corrupt episode files instead of stopping.")


def begin(directory, stage: str, config: dict, seed: int, inputs: dict, force: bool):
    """Start, resume or skip a stage. Returns its manifest, or None when the stage is already
    complete (and says so); the command then returns "complete", which `pipeline` reads."""
    from worldmodels.artifacts import begin_stage

    manifest, state = begin_stage(directory, stage, config, seed, inputs, force)
    if state == "complete":
        click.echo(f"{stage}: complete in {directory}; add --force to redo it")
        return None
    if state == "resumed":
        click.echo(f"{stage}: resuming the unfinished run in {directory}")
    return manifest
