"""`synth dedup`: drop the duplicates from a dataset; every drop has a reason and the kept item's id."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..gate.dedup import DedupConfig
from ._common import CONFIG_OPTION, ProgressBar, path_text, settings_command, tell


@settings_command("dedup", DedupConfig)
def dedup(
    dataset: Path = typer.Argument(..., help="Any dataset synth reads: JSON, JSONL, .gz, Parquet, a folder."),
    out: Path = typer.Option(..., "--out", help="JSONL file for the kept rows, unchanged."),
    dropped: Optional[Path] = typer.Option(None, "--dropped", help="JSONL of dropped rows with reason and kept id "
                                                                   "(default OUT.dropped.jsonl)."),
    config: Optional[Path] = CONFIG_OPTION,
    **flags,
) -> None:
    """Drop exact, normalised and near duplicates from a dataset; every drop has a reason and the kept item's id."""
    from ..gate.dedup import dedup as run_dedup

    if "verifier_model" in flags and "cache" not in flags:
        flags["cache"] = str(out.with_name(out.name + ".cache.sqlite"))
    settings = DedupConfig.resolve(config_file=config, flags=flags)
    with ProgressBar("dedup", terminal_only=True) as bar:
        result = run_dedup(dataset, out, settings, dropped_path=path_text(dropped),
                           progress=lambda done, total: bar(done, total))
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(result.dropped.items())) or "none"
    tell(f"kept {result.kept} of {result.total} in {result.out}; dropped: {reasons} (listed in {result.dropped_path})")
    if result.verifier_usage:
        u = result.verifier_usage
        tell(f"verifier: {u['calls']} calls ({u['cached_calls']} cached, {u['failures']} unanswered, their pairs "
             f"kept), ${u['cost_usd']:.4f}")
