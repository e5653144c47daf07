"""worldmodels export: an experiment's trained agent packed into one file that travels."""

from __future__ import annotations

import click

from .options import stage_command, trained_in_option, variant_option


@stage_command("export")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="The bundle to write (a tar file, e.g. agent.tar).")
@trained_in_option
@variant_option
def export_command(run, out, trained_in, variant):
    """Pack V, M, C (best, mean and any selected parameters), their manifests and the dream's
    start data into one tar file with a checksum of every member; `load_agent("agent.tar")`
    runs it with no experiment folder."""
    from pathlib import Path

    from worldmodels.core.bundle import export_agent

    path = export_agent(run.layout, Path(out), trained_in, variant)
    click.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB)")
