"""`synth generate`: bootstrap new tasks from seeds (or take given queries), gate them, answer them with explanations."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import exit_code
from ..generation.config import GenerateConfig
from ._common import CONFIG_OPTION, ProgressBar, say, settings_command, tell


@settings_command("generate", GenerateConfig)
def generate(
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this folder: finished work is not repeated "
                                                     "or repaid, failed requests are sent again."),
    overwrite: bool = typer.Option(False, help="Replace an existing run folder (only a synth run folder)."),
    config: Optional[Path] = CONFIG_OPTION,
    **flags,
) -> None:
    """Bootstrap new tasks from seeds, gate them for novelty, and answer them with explanation traces."""
    from ..generation import generate as run_generate

    base = GenerateConfig.from_file(config) if config else None
    with ProgressBar("records") as bar:
        def progress(state: dict) -> None:
            bar(state["records"], state["target"], f"rejected {state['rejected']}  failed {state['failed']}  "
                                                   f"tasks {state['tasks']}  ${state['cost']:.4f}")

        result = run_generate(base, resume=resume, overwrite=overwrite, progress=progress, log=say, **flags)
    counts, usage = result.manifest.get("counts", {}), result.manifest.get("usage", {})
    tell(f"{result.status}: {result.records} records in {result.path} "
         f"({sum(counts.get('rejected', {}).values())} rejected, {sum(counts.get('failed', {}).values())} failed, "
         f"{usage.get('prompt_tokens', 0) + usage.get('completion_tokens', 0)} tokens, "
         f"${usage.get('total_cost_usd', usage.get('cost_usd', 0.0)):.4f})")
    if result.message:
        say(result.message)
    if result.status != "completed":
        raise typer.Exit(exit_code(result.status))
