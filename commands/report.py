"""worldmodels report: RESULTS/NAME/REPORT.md, the paper's tables beside what was measured."""

from __future__ import annotations

import click

from commands.common import common_options, friendly_errors


@click.command("report")
@common_options
@friendly_errors
def report_command(preset, name, data_dir, results_dir, seed):
    """Write RESULTS/NAME/REPORT.md from the files the stages wrote (nothing is re-run; parts
    not run yet are named with the command that runs them). --preset only shapes those
    commands."""
    from worldmodels.artifacts import Layout
    from worldmodels.errors import WorldModelsError
    from worldmodels.report import write_report

    layout = Layout(data_dir, results_dir, name)
    if not layout.experiment.exists():
        raise WorldModelsError(f"no experiment at {layout.experiment}: run "
                               f"`worldmodels pipeline --preset {preset} --name {name}` first")
    click.echo(f"wrote {write_report(layout, preset)}")
