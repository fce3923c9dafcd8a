"""`build_report(run)`: read the run once, collect the numbers, draw the plots, sample the example browser, and
write report.json, report.html and README.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..gate.embeddings import Embedder
from ..files import write_json_atomic, write_text_atomic
from ..settings import Settings, setting
from .card import dataset_card
from .evidence import link_reports
from .browser import browser_data
from .numbers import summarize
from .reading import load_run
from .page import html_page
from .plots import render_all


@dataclass
class ReportConfig(Settings):
    command: ClassVar[str] = "report"

    out: str | None = setting(None, "Folder for README.md, report.html and report.json (default RUN/report).")
    sample_size: int = setting(500, "Tasks sampled (seeded) for the Vendi score and pairwise distance.", min=2)
    clusters: int = setting(20, "k-means clusters for the topic-coverage figures (all tasks; persona-led against not).", min=2, max=10_000)
    seed: int = setting(0, "Seed for the samples and the clustering.", min=0, max=2 ** 31 - 1)
    browser_size: int = setting(5000, "Records (and rejected candidates) in the page's example browser; above this, "
                                      "a seeded sample of this size. 0 leaves the browser out.", min=0,
                                max=1_000_000)


@dataclass
class ReportPaths:
    card: Path
    html: Path
    numbers: Path
    notes: list[str] = field(default_factory=list)     # warnings for the reader, also in report.json


def build_report(run: str | Path, out: str | Path | None = None, *, config: ReportConfig | None = None,
                 embedder: Embedder | None = None, **settings) -> ReportPaths:
    """Write the report of a run folder into `out` (default RUN/report); `settings` are ReportConfig's fields."""
    config = ReportConfig.resolve(base=config, flags={**settings, **({"out": str(out)} if out is not None else {})})
    run = Path(run)
    out = Path(config.out) if config.out else run / "report"
    data = load_run(run)
    numbers = summarize(data, embedder=embedder, sample_size=config.sample_size, clusters=config.clusters,
                        seed=config.seed)
    link_reports(numbers["evidence"], out)
    browser = browser_data(data, config.browser_size, config.seed) if config.browser_size else None
    title = f"synth dataset: {run.resolve().name}"
    out.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(out / "README.md", out / "report.html", out / "report.json", numbers["notes"])
    write_json_atomic(paths.numbers, numbers)
    write_text_atomic(paths.html, html_page(numbers, render_all(numbers), title, browser))
    write_text_atomic(paths.card, dataset_card(numbers, title))
    return paths
