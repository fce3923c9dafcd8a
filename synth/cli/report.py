"""`synth report RUN`: a dataset card, a self-contained HTML page with plots, and the numbers as JSON."""

from __future__ import annotations

from pathlib import Path

import typer

from ..report.build import ReportConfig
from ._common import say, settings_command, tell


@settings_command("report", ReportConfig)
def report(run: Path = typer.Argument(..., help="A synth run folder."), **flags) -> None:
    """Write a dataset card, a self-contained HTML page with plots, and the numbers as JSON."""
    from ..report.build import build_report

    config = ReportConfig.resolve(flags=flags)
    paths = build_report(run, config=config)
    for note in paths.notes:
        say(f"warning: {note}")
    tell(f"wrote {paths.card}, {paths.html} and {paths.numbers}")
