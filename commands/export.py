"""worldmodels export: an experiment's trained agent packed into one file that travels."""

from __future__ import annotations

import click

from .options import stage_command


@stage_command("export")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="The bundle to write (a tar file, e.g. agent.tar).")
@click.option("--controller", "trained_in", type=click.Choice(["dream", "real"]),
              default="dream", show_default=True, help="Which trained controller.")
@click.option("--variant", type=click.Choice(["zh", "z", "z-hidden"]), default="zh",
              show_default=True, help="Controller inputs.")
def export_command(run, out, trained_in, variant):
    """Pack V, M, C (best, mean and any selected parameters), their manifests and the dream's
    start data into one tar file with a checksum of every member; `load_agent("agent.tar")`
    runs it with no experiment folder."""
    from pathlib import Path

    from worldmodels.core.bundle import export_agent

    path = export_agent(run.layout, Path(out), trained_in, variant)
    click.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB)")
