"""The HTML page: one self-contained file, plots inlined as base64 PNGs, numbers as tables."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

CAPTIONS = {
    "outcomes": "Records kept, and candidates rejected or failed, by reason.",
    "acceptance": "Share of proposed tasks accepted, per bootstrap prompt (rolling window).",
    "nn_similarity": "Each candidate's similarity to its nearest pool task; the dashed line is the threshold.",
    "lengths": "Instruction and response lengths in words.",
    "system_messages": "Share of records per Orca system message.",
    "task_kinds": "Share of records per task kind.",
}


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)


def html_page(numbers: dict[str, Any], plots: dict[str, bytes], title: str) -> str:
    counts, diversity, usage = numbers["counts"], numbers["diversity"], numbers["usage"]
    coverage = diversity.get("cluster_coverage") or {}
    summary = [
        ("records", counts["records"]), ("tasks accepted", counts["tasks_accepted"]),
        ("acceptance rate", numbers["acceptance"]["overall"]),
        ("teachers", ", ".join(numbers["teachers"]) or "n/a"),
        ("instruction distinct-1/2/3", " / ".join(str(v) for v in numbers["distinct"]["instruction"].values())),
        ("response distinct-1/2/3", " / ".join(str(v) for v in numbers["distinct"]["response"].values())),
        ("mean pairwise cosine distance", diversity["mean_pairwise_cosine_distance"]),
        (f"Vendi score (n={diversity['sample_size']})", diversity["vendi_score"]),
        ("clusters occupied", f"{coverage.get('occupied', 'n/a')} of {coverage.get('clusters', 'n/a')}"),
        ("tokens per record", usage["tokens_per_record"]), ("cost per record (USD)", usage["cost_usd_per_record"]),
        ("run cost (USD)", usage["run_cost_usd"]),
    ]
    figures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        f"<figcaption>{html.escape(CAPTIONS.get(name, name))}</figcaption></figure>"
        for name, png in plots.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} th, td {{ border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; }}
figure {{ margin: 1.5rem 0; }} img {{ max-width: 100%; }} figcaption {{ color: #555; font-size: .9rem; }}
pre {{ background: #f6f6f6; padding: 1rem; overflow-x: auto; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{_rows(summary)}</table>
{figures}
<h2>Configuration</h2>
<pre>{html.escape(json.dumps(numbers["config"], indent=2))}</pre>
</body></html>
"""
