"""worldmodels paired: two evaluations compared episode by episode on the episodes they share."""

from __future__ import annotations

import json

import click

from .options import friendly_errors


@click.command("paired", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("baseline", type=click.Path(exists=True))
@click.argument("candidate", type=click.Path(exists=True))
@click.option("--only", default="*", show_default=True,
              help="With folders: pair only the evaluation files whose names match this "
              "shell pattern (e.g. 'real-dream-best-seed*.json', the validations).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
@friendly_errors
def paired_command(baseline, candidate, only, as_json):
    """CANDIDATE's real score minus BASELINE's, paired episode by episode (the same track or
    game seed and noise): the mean difference, its standard error, and on how many episodes
    the candidate did better. Each is an evaluation file, an experiment's evaluate/ folder or
    the experiment folder; two folders pair their files of the same name and pool them."""
    from pathlib import Path

    from worldmodels.views.paired import markdown, paired

    result = paired(Path(baseline), Path(candidate), only)
    click.echo(json.dumps(result, indent=1) if as_json else markdown(result), nl=as_json)
