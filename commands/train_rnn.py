"""worldmodels train-rnn: the MDN-RNN (M) with reward and done heads."""

from __future__ import annotations

from .options import echo, force_option, progress_enabled, stage_command


@stage_command("train-rnn", "rnn")
@force_option
def train_rnn_command(run, force):
    """Train M on DATA/NAME/series; write RESULTS/NAME/rnn. --dropout can be kept on while
    dreaming: `train-controller --dropout`."""
    from worldmodels import stages

    echo(stages.train_rnn(run.layout, run.config, run.seed, force, progress_enabled()))
