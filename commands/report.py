"""worldmodels report: RESULTS/NAME/REPORT.md, the paper's tables beside what was measured."""

from __future__ import annotations

import click

from .options import stage_command


@stage_command("report")
def report_command(run):
    """Write RESULTS/NAME/REPORT.md from the files the stages wrote (nothing is re-run; parts
    not run yet are named with the command that runs them). --preset only shapes those
    commands."""
    from worldmodels import stages

    click.echo(f"wrote {stages.report(run.layout, run.preset_name).written[0]}")
