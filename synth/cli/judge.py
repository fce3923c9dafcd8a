"""`synth judge`: score every record of a run or dataset with an LLM judge, on rubrics of our own."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import exit_code
from ..quality.judge import JudgeConfig
from ._common import CONFIG_OPTION, ProgressBar, say, settings_command, tell


@settings_command("judge", JudgeConfig)
def judge(
    data: Path = typer.Argument(..., help="A synth run folder, or any dataset synth reads (JSONL, JSON, .gz, "
                                          "Parquet, a folder)."),
    config: Optional[Path] = CONFIG_OPTION,
    **flags,
) -> None:
    """Score every record with an LLM judge: response quality (1-5) and instruction complexity (1-6)."""
    from ..quality.judge import judge as run_judge

    settings = JudgeConfig.resolve(config_file=config, flags=flags)
    with ProgressBar("verdicts", terminal_only=True) as bar:
        result = run_judge(data, settings, progress=bar, log=say)
    tell(f"{result.status}: {summary_line(result.summary)}")
    tell(f"scores: {result.out}; summary: {result.summary_path}")
    if result.status != "completed":
        say(next_step(result.status))
        raise typer.Exit(exit_code(result.status))


def summary_line(summary: dict) -> str:
    parts = []
    for rubric, part in summary["rubrics"].items():
        failures = ", ".join(f"{n} {reason}" for reason, n in part["failures"].items())
        mean = f"mean {part['mean']:.2f}" if part["mean"] is not None else "no scores"
        parts.append(f"{rubric} {part['answered']}/{summary['records']} ({mean}"
                     + (f"; failed: {failures}" if failures else "") + ")")
        bias = part.get("length_bias")
        if bias and bias["spearman"] is not None:
            parts.append(f"quality~length spearman {bias['spearman']:+.2f}")
    return f"{summary['records']} records, " + ", ".join(parts) + f", ${summary['usage']['cost_usd']:.4f}"


def next_step(status: str) -> str:
    return {"incomplete": "some verdicts failed (kept with their reason and raw text in the scores file); the same "
                          "command sends failed requests again, while replies that did not parse come back from the "
                          "cache unless --temperature or --max-tokens changes",
            "stopped_budget": "stopped at --max-cost; raise it and run the same command again to go on",
            "interrupted": "interrupted: every verdict so far is saved; run the same command again to go on",
            }.get(status, status)
