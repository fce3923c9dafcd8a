"""The HTML page: one self-contained file, plots inlined as base64 PNGs, numbers as tables, and the example browser
(its data inlined as JSON, plain JavaScript and CSS). Nothing is fetched; every text from the run is escaped."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from .browser import browser_html
from .tables import Link, Table, fmt, sections

CAPTIONS = {
    "outcomes": "Records kept, and candidates rejected or failed, by reason.",
    "acceptance": "Share of proposed tasks accepted, per bootstrap prompt (rolling window).",
    "nn_similarity": "Each candidate's similarity to its nearest pool task; the dashed line is the threshold.",
    "lengths": "Instruction and response lengths in words.",
    "system_messages": "Share of records per Orca system message.",
    "task_kinds": "Share of records per task kind.",
    "judge_scores": "The judge's scores of the kept records, per rubric.",
    "evol_rounds": "Complexity per Evol-Instruct round: instruction words, constraint markers, and the judge's "
                   "complexity score where records were judged.",
    "concurrency": "--concurrency auto: the limit, the requests in flight and the replies per second over the last "
                   "session (from the manifest's timeline).",
}
LONG_CELL = 60               # characters above which a cell is set in the small, wrapped style
_CSS = Path(__file__).with_name("page.css")


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)


def html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.head)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in table.rows)
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return f"<h3>{html.escape(table.title)}</h3><table><tr>{head}</tr>{body}</table>{note}"


def _cell(value: Any) -> str:
    if isinstance(value, Link):
        return f'<td><a href="{html.escape(value.href, quote=True)}">{html.escape(value.text)}</a></td>'
    text = fmt(value)
    return f'<td class="long">{html.escape(text)}</td>' if len(text) > LONG_CELL else f"<td>{html.escape(text)}</td>"


def _summary(numbers: dict[str, Any]) -> list[tuple[str, Any]]:
    counts, diversity, usage = numbers["counts"], numbers["diversity"], numbers["usage"]
    coverage = diversity.get("cluster_coverage") or {}
    return [
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
        ("record schema versions", ", ".join(f"v{k}: {v}" for k, v in numbers["counts"]["schema_versions"].items())
         or "n/a"),
    ]


def html_page(numbers: dict[str, Any], plots: dict[str, bytes], title: str,
              browser: dict[str, Any] | None = None) -> str:
    """The page; `browser` is the example browser's data (browser.browser_data), or None to leave it out."""
    extra = sections(numbers)
    anchors = [("summary", "Summary")] + [(f"s{i}", t) for i, (t, _) in enumerate(extra)] + [("plots", "Plots")]
    anchors += [("examples", "Examples")] if browser is not None else []
    anchors += [("configuration", "Configuration")]
    nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in anchors)
    body = "".join(f'<section id="s{i}"><h2>{html.escape(t)}</h2>{"".join(html_table(x) for x in tables)}</section>'
                   for i, (t, tables) in enumerate(extra))
    figures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        f"<figcaption>{html.escape(CAPTIONS.get(name, name))}</figcaption></figure>"
        for name, png in plots.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
{_CSS.read_text(encoding="utf-8")}</style></head><body>
<nav>{nav}</nav>
<h1>{html.escape(title)}</h1>
<section id="summary"><table>{_rows(_summary(numbers))}</table></section>
{body}
<section id="plots"><h2>Plots</h2>{figures}</section>
{browser_html(browser) if browser is not None else ""}
<section id="configuration"><h2>Configuration</h2>
<pre>{html.escape(json.dumps(numbers["config"], indent=2))}</pre></section>
</body></html>
"""
