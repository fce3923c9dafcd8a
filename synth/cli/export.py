"""`synth export`: a run's records in a format trainers read."""

from __future__ import annotations

from pathlib import Path

import typer

from ..formats.export import ExportConfig
from ._common import say, settings_command, tell


@settings_command("export", ExportConfig)
def export(run: Path = typer.Argument(..., help="A synth run folder, or any dataset synth reads."), **flags) -> None:
    """Write a run's records in a format trainers read."""
    from ..formats.export import export as run_export

    config = ExportConfig.resolve(flags=flags)
    count = run_export(run, config.format, config.out, warn=lambda message: say(f"warning: {message}"))
    tell(f"wrote {count} records to {config.out} ({config.format})")
