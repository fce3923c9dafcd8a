"""`synth decontaminate`: drop the rows of a dataset that hold benchmark items; every drop names its item."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..decontam.config import FIXED_CALL_SETTINGS, DecontamConfig
from ..errors import ConfigError
from ._common import CONFIG_OPTION, ProgressBar, path_text, say, settings_command, tell


@settings_command("decontaminate", DecontamConfig, skip=FIXED_CALL_SETTINGS)
def decontaminate(
    dataset: Path = typer.Argument(..., help="Any dataset synth reads: a run folder, JSON, JSONL, .gz, Parquet."),
    more: Optional[list[str]] = typer.Argument(None, help="More benchmarks, as in --against gsm8k mmlu my_eval.jsonl.",
                                               show_default=False),
    out: Path = typer.Option(..., "--out", help="File for the clean rows, unchanged."),
    contaminated: Optional[Path] = typer.Option(None, "--contaminated", help="JSONL of flagged rows with their "
                                                "benchmark item (default OUT.contaminated.jsonl)."),
    summary: Optional[Path] = typer.Option(None, "--summary", help="JSON summary per benchmark (default "
                                           "OUT.decontamination.json)."),
    config: Optional[Path] = CONFIG_OPTION,
    **flags,
) -> None:
    """Find the rows that hold benchmark items (n-grams, then embeddings, then an optional model) and drop them."""
    from ..decontam.api import decontaminate as run

    if more:
        if "against" not in flags:
            raise ConfigError(f"unexpected argument(s) {' '.join(more)}; name benchmarks with --against")
        flags["against"] = [*flags["against"], *more]
    settings = DecontamConfig.resolve(config_file=config, flags=flags)
    say(settings.summary())
    with ProgressBar("decontaminate", terminal_only=True) as bar:
        result = run(dataset, out, settings, contaminated_path=path_text(contaminated), summary_path=path_text(summary),
                     progress=lambda done: bar(done, None), log=say)
    found = ", ".join(f"{name} {count}" for name, count in result.contaminated.most_common()) or "none"
    stages = ", ".join(f"{count} by {stage}" for stage, count in result.by_stage.most_common())
    tell(f"kept {result.clean} of {result.total} rows in {result.out}; contaminated: {found}"
         + (f" ({stages})" if stages else "") + f", listed in {result.contaminated_path}; summary in "
         f"{result.summary_path}")
    usage = result.summary.get("verifier_usage")
    if usage:
        tell(f"verifier: {usage['calls']} calls ({usage['cached_calls']} cached, {usage['failures']} unanswered, "
             f"their rows kept), ${usage['cost_usd']:.4f}")
