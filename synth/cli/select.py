"""`synth select`: the best N rows of a run or dataset, diverse; every row left out has a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..quality.select import SelectConfig
from ._common import CONFIG_OPTION, ProgressBar, say, settings_command, tell


@settings_command("select", SelectConfig)
def select(
    dataset: Path = typer.Argument(..., help="A synth run folder, or any dataset synth reads."),
    out: Path = typer.Option(..., "--out", help="File for the selected rows (a folder for --format hf); "
                                                "OUT.selection.json beside it says why each row was kept or not."),
    config: Optional[Path] = CONFIG_OPTION,
    **flags,
) -> None:
    """Select the best rows of a run or dataset, kept diverse: by judge scores where there are some, by the free
    quality signals otherwise."""
    from ..quality.select import select as run_select

    settings = SelectConfig.resolve(config_file=config, flags=flags)
    with ProgressBar("select", terminal_only=True) as bar:
        result = run_select(dataset, out, settings, warn=lambda message: say(f"warning: {message}"),
                            progress=lambda done, total: bar(done, total))
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(result.dropped.items())) or "none"
    tell(f"selected {result.selected} of {result.total} rows ({settings.strategy}) into {result.out}; "
         f"left out: {reasons} (each with its reason in {result.selection_path})")
    tell(f"ranked by {result.ranked_by}")
