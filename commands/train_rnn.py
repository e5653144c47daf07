"""worldmodels train-rnn: the MDN-RNN (M) with reward and done heads."""

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
    setup_tensorflow,
    summary,
)


@click.command("train-rnn")
@common_options
@click.option("--epochs", type=int, help="Passes over the episodes.")
@click.option("--batch-size", type=int, help="Sequences per batch.")
@click.option("--sequence-length", type=int, help="Steps per training sequence.")
@click.option("--learning-rate", type=float, help="Adam learning rate.")
@click.option("--dropout", type=float,
              help="Dropout rate on the LSTM output that the heads read (default from the "
                   "preset: 0). A controller can keep it on while dreaming: "
                   "`train-controller --dropout`.")
@force_option
@friendly_errors
def train_rnn_command(preset, name, data_dir, results_dir, seed, epochs, batch_size,
                      sequence_length, learning_rate, dropout, force):
    """Train M on DATA/NAME/series; write RESULTS/NAME/rnn."""
    from worldmodels import checkpoint
    from worldmodels.artifacts import Layout, ensure_writable, finish_manifest, require_manifest
    from worldmodels.config import get_preset, override, to_dict
    from worldmodels.errors import WorldModelsError

    started = time.time()
    for option, value in (("epochs", epochs), ("batch-size", batch_size),
                          ("sequence-length", sequence_length), ("learning-rate", learning_rate)):
        positive(option, value)
    rate_option("dropout", dropout)
    config = override(get_preset(preset).rnn, epochs=epochs, batch_size=batch_size,
                      sequence_length=sequence_length, learning_rate=learning_rate,
                      dropout=dropout)
    layout = Layout(data_dir, results_dir, name)
    series_manifest = require_manifest(layout.series_dir, "series", "encode")
    vae = require_manifest(layout.vae, "trained V", "train-vae")
    if series_manifest["inputs"]["vae"] != vae["run_id"]:
        raise WorldModelsError(
            f"the series in {layout.series_dir} was made by another V than {layout.vae}: "
            "re-run `worldmodels encode`"
        )
    ensure_writable(layout.rnn)
    setup_tensorflow(seed)
    from worldmodels.rnn import MDNRNN, REFERENCE_PARAMETERS, train_rnn
    from worldmodels.store import require_series

    series = require_series(layout.series)
    z_size = int(series.attrs["z_size"])
    inputs = {"series": series_manifest["run_id"], "vae": vae["run_id"], "z_size": z_size}
    if force:
        checkpoint.clear(layout.rnn)
    manifest = begin(layout.rnn, "train-rnn", to_dict(config), seed, inputs, force)
    if manifest is None:
        series.close()
        return "complete"
    model = MDNRNN(z_size, config.hidden_size, config.mixtures, config.dropout)
    heads = model.reward_head.count_params() + model.done_head.count_params()
    click.echo(f"M: MDN-RNN with {model.count_params():,} parameters "
               f"({model.count_params() - heads:,} without the reward and done heads; "
               f"reference {REFERENCE_PARAMETERS:,}), {len(series['lengths'])} episodes")
    history = train_rnn(model, series, config, seed, layout.rnn, progress=progress_enabled())
    series.close()
    last = history[-1]
    finish_manifest(layout.rnn, manifest, wall_seconds=time.time() - started,
                    parameters=model.count_params(), **last)
    for file in ("rnn.weights.h5", "manifest.json", "metrics.csv"):
        click.echo(f"wrote {layout.rnn / file}")
    summary(f"train-rnn: {config.epochs} epochs, loss {last['loss']:.3f} (mdn {last['mdn']:.3f}, "
            f"reward {last['reward']:.3f}, done {last['done']:.3f})", started)
