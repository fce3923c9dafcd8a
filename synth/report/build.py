"""`build_report(run)`: collect the numbers, draw the plots, write report.json, report.html and README.md."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..embeddings import Embedder
from .card import dataset_card
from .numbers import collect
from .page import html_page
from .plots import render_all


@dataclass
class ReportPaths:
    card: Path
    html: Path
    numbers: Path
    notes: list[str] = field(default_factory=list)     # warnings for the reader, also in report.json


def build_report(run: str | Path, out: str | Path | None = None, *, embedder: Embedder | None = None,
                 sample_size: int = 500, clusters: int = 20, seed: int = 0) -> ReportPaths:
    """Write the report of a run folder into `out` (default RUN/report)."""
    run = Path(run)
    out = Path(out) if out else run / "report"
    numbers = collect(run, embedder=embedder, sample_size=sample_size, clusters=clusters, seed=seed)
    title = f"synth dataset: {run.resolve().name}"
    out.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(out / "README.md", out / "report.html", out / "report.json", numbers["notes"])
    paths.numbers.write_text(json.dumps(numbers, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths.html.write_text(html_page(numbers, render_all(numbers), title), encoding="utf-8")
    paths.card.write_text(dataset_card(numbers, title), encoding="utf-8")
    return paths
