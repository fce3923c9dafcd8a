"""`synth eval`: did the student get better? Tuned against base, against the references, or two students."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import exit_code
from ..evaluation.config import EvalConfig
from ._common import CONFIG_OPTION, ProgressBar, say, settings_command, tell


@settings_command("eval", EvalConfig)
def eval_command(
    students: Optional[list[Path]] = typer.Argument(None, help="A synth train output folder (tuned against its base, "
                                                              "or --against teacher), or two (head to head)."),
    overwrite: bool = typer.Option(False, help="Replace an evaluation with other settings in the output folder."),
    config: Optional[Path] = CONFIG_OPTION,
    **flags,
) -> int:
    """Judge a student's answers against its base, the references or another student, in both orders."""
    import warnings

    from transformers.utils import logging as hf_logging

    from ..evaluation.api import evaluate

    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")   # raised inside peft, not ours
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if students:
        flags["students"] = [str(s) for s in students]
    settings = EvalConfig.resolve(config_file=config, flags=flags)
    with ProgressBar("judge", terminal_only=True) as bar:
        result = evaluate(None, settings, overwrite=overwrite, log=say,
                          progress=lambda stage, done, total: bar(done, total))
    r = result.summary["results"]
    if result.win_rate is None:
        tell(f"{result.status}: no pair was judged in both orders; see {result.out / 'judgments.jsonl'}")
    else:
        low, high = result.win_rate_ci95
        tell(f"{result.status}: {result.first} vs {result.second}: {result.wins} wins, {result.ties} ties, "
             f"{result.losses} losses of {r['pairs']} pairs; win rate {result.win_rate:.3f} "
             f"(95% CI {low:.3f}-{high:.3f}); report in {result.out / 'report.html'}")
    return exit_code(result.status)
