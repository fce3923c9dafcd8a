"""`synth report RUN`: a thin command over build_report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report_command(
    run: Path = typer.Argument(..., help="A synth run folder."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for README.md, report.html and report.json (default RUN/report)."),
    sample_size: int = typer.Option(500, help="Tasks sampled (seeded) for the Vendi score and pairwise distance."),
    clusters: int = typer.Option(20, help="k-means clusters for the coverage figure."),
    seed: int = typer.Option(0, help="Seed for the sample and the clustering."),
) -> None:
    """Write a dataset card, a self-contained HTML page with plots, and the numbers as JSON."""
    from rich.console import Console

    from .build import build_report

    paths = build_report(run, out, sample_size=sample_size, clusters=clusters, seed=seed)
    for note in paths.notes:
        Console(stderr=True).print(f"warning: {note}", soft_wrap=True, highlight=False, markup=False)
    Console().print(f"wrote {paths.card}, {paths.html} and {paths.numbers}", soft_wrap=True, highlight=False)
