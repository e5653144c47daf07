"""The `worldmodels` command group. Stages are imported lazily so --help stays fast. (This
folder installs as the package ``worldmodels_cli``; inside it, imports are relative.)"""

from __future__ import annotations

import importlib

import click

_STAGES = {
    "collect": (".collect", "collect_command"),
    "train-vae": (".train_vae", "train_vae_command"),
    "encode": (".encode", "encode_command"),
    "train-rnn": (".train_rnn", "train_rnn_command"),
    "train-controller": (".train_controller", "train_controller_command"),
    "evaluate": (".evaluate", "evaluate_command"),
    "enjoy": (".enjoy", "enjoy_command"),
    "pipeline": (".pipeline", "pipeline_command"),
    "iterate": (".iterate", "iterate_command"),
    "compare": (".compare", "compare_command"),
    "temperatures": (".temperatures", "temperatures_command"),
    "fidelity": (".fidelity", "fidelity_command"),
    "select": (".select", "select_command"),
    "resolution": (".resolution", "resolution_command"),
    "report": (".report", "report_command"),
    "show": (".show", "show_command"),
    "bench": (".bench", "bench_command"),
    "runs": (".runs", "runs_command"),
    "paired": (".paired", "paired_command"),
    "export": (".export", "export_command"),
}
_HELP = {
    "collect": "Collect rollouts of CarRacing-v3 or TakeCover with an exploration policy.",
    "train-vae": "Train V, the ConvVAE, streaming frames from the rollouts.",
    "encode": "Encode every frame with V (mu, logvar): the series M trains on.",
    "train-rnn": "Train M, the MDN-RNN with reward and done heads.",
    "train-controller": "Evolve C with CMA-ES in the dream (default) or the real env.",
    "evaluate": "Score a trained agent in the real env (default) or the dream.",
    "enjoy": "Film the trained agent on real tracks: MP4 of the env beside what V sees.",
    "pipeline": "Run every stage in order for a preset.",
    "iterate": "Rounds of collect with C + noise, train M and evolve C further (iterative).",
    "compare": "Score a trained controller in the dream (temperature sweep) and the real env.",
    "temperatures": "The paper's table: C trained in the dream per temperature, dream vs real.",
    "fidelity": "Measure the dream against reality along the controller's real episodes.",
    "select": "Choose among C's checkpoints on real validation tracks (real-selected).",
    "resolution": "Whether the dream ranks controllers as the real env does (rank correlation).",
    "report": "Write RESULTS/NAME/REPORT.md: the paper's tables beside what was measured.",
    "show": "Draw V, M and C: reconstructions, predictions, a dream GIF, training curves.",
    "bench": "Measure the performance targets against their baselines (bench.json).",
    "runs": "A table of experiments and seeds: recipes pooled with standard errors.",
    "paired": "Two evaluations' difference on the episodes they share, with its standard error.",
    "export": "Pack a trained agent (V, M, C, manifests) into one file: load_agent(FILE).",
}


class LazyGroup(click.Group):
    def list_commands(self, context):
        return list(_STAGES)

    def get_command(self, context, name):
        if name not in _STAGES:
            return None
        module, attribute = _STAGES[name]
        return getattr(importlib.import_module(module, __package__), attribute)

    def format_commands(self, context, formatter):
        rows = [(name, _HELP[name]) for name in _STAGES]
        with formatter.section("Stages"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="worldmodels")
@click.option("--debug", is_flag=True,
              help="Show the traceback of every error, user errors too (for a bug report; "
                   "the same as WORLDMODELS_DEBUG=1).")
@click.pass_context
def main(context, debug):
    """World Models (Ha & Schmidhuber, 2018) on CarRacing-v3 and ViZDoom's TakeCover, in stages
    that talk through files.

    Typical run: collect -> train-vae -> encode -> train-rnn -> train-controller -> evaluate,
    or all of them with `worldmodels pipeline --preset small` (TakeCover: --preset doom-small).
    """
    import os

    from worldmodels.core.tasks import StopOnSignals

    from . import PROGRAM, ignore_stop_signals
    from .options import DEBUG

    if debug:  # the environment carries it to worker processes too
        os.environ[DEBUG] = "1"

    # SIGTERM, SIGINT and SIGHUP end every command with one line, workers or not (backends
    # started by the command add their own handlers, which end their workers first); once it
    # has ended, the program's exit status is the command's.
    guard = StopOnSignals(lambda: None)
    context.call_on_close(ignore_stop_signals if PROGRAM else guard.restore)


if __name__ == "__main__":
    main()
