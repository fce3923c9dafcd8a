"""report.html: one self-contained page (plots inlined as PNG, no network): the win rate with its interval, the
length view, the numbers per model, and the prompts where the first contestant lost most clearly, side by side."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

from ..report.plots import _png, plt          # one PNG helper for every page synth writes
from .judge import Outcome
from .metrics import words
from .summary import REFERENCE, answer_text
from .tasks import EvalTask

SHOWN_LOSSES = 5
_COLOURS = {"win": "#34a853", "tie": "#9aa0a6", "loss": "#e8710a"}


def results_plot(summary: dict[str, Any]) -> bytes:
    r = summary["results"]
    figure, ax = plt.subplots(figsize=(7, 2.2))
    left = 0.0
    for key in ("win", "tie", "loss"):
        share = r[key]["rate"] or 0.0
        ax.barh([0], [share], left=left, color=_COLOURS[key], label=f"{key} {r[key]['count']}")
        left += share
    if r["win_rate"] is not None:
        low, high = r["win_rate_ci95"]
        ax.errorbar([r["win_rate"]], [0], xerr=[[r["win_rate"] - low], [high - r["win_rate"]]], fmt="o",
                    color="black", capsize=6, label=f"win rate {r['win_rate']:.2f} (95% CI)")
    ax.axvline(0.5, color="black", linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel(f"share of {r['pairs']} judged pairs, from {summary['first']}'s side")
    ax.legend(fontsize=7, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return _png(figure)


def length_plot(summary: dict[str, Any], lengths: dict[str, list[int]]) -> bytes:
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    top = max([1] + [max(v) for v in lengths.values() if v])
    for (name, values), colour in zip(lengths.items(), ("#4c8bf5", "#a142f4")):
        left.hist(values, bins=20, range=(0, top), alpha=0.6, label=name, color=colour)
    left.set_xlabel("answer length (words)")
    left.set_ylabel("answers")
    left.legend(fontsize=8)
    bins = summary["length"]["ratio_bins"]
    names = list(bins)
    rates = [bins[n]["win_rate"] if bins[n]["win_rate"] is not None else 0.0 for n in names]
    bars = right.bar(names, rates, color="#4c8bf5")
    for bar, name in zip(bars, names):
        right.annotate(f"n={bins[name]['pairs']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                       ha="center", va="bottom", fontsize=7)
    right.axhline(0.5, color="black", linestyle=":", linewidth=1)
    right.set_ylim(0, 1.1)
    right.set_xlabel(f"length of {summary['first']}'s answer / {summary['second']}'s")
    right.set_ylabel("win rate (ties half)")
    return _png(figure)


def _img(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"><figcaption>' \
           f"{html.escape(caption)}</figcaption></figure>"


def _rows(pairs) -> str:
    return "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("n/a" if value is None else str(value))


def model_table(summary: dict[str, Any]) -> str:
    head = "<tr><th>model</th><th>answers</th><th>mean tokens</th><th>mean words</th><th>stopped / cut</th>" \
           "<th>ROUGE-L</th><th>reference loss</th><th>degenerate</th></tr>"
    body = ""
    for name, m in summary["models"].items():
        finish = m["finish_reasons"]
        degenerate = m["degenerate"].get("rate") if "rate" in m["degenerate"] else m["degenerate"].get("unavailable")
        cells = [name, m["answers"], m["mean_tokens"], m["mean_words"],
                 f"{finish.get('stop', 0)} / {finish.get('length', 0)}", m["rouge_l"], m["reference_loss"], degenerate]
        body += "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in cells) + "</tr>"
    return f"<table>{head}{body}</table>"


def clearest_losses(found: list[Outcome], tasks: list[EvalTask], answers: list[dict[str, Any]],
                    judgments: dict[str, dict[str, Any]], first: str, second: str) -> str:
    """The pairs the first contestant lost by the widest margin, the two answers side by side."""
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for row in answers:
        by_model.setdefault(row["model"], {})[row["id"]] = row
    by_id = {t.id: t for t in tasks}
    lost = sorted((o for o in found if o.result == "loss"), key=lambda o: (o.margin, o.pair))[:SHOWN_LOSSES]
    if not lost:
        return f"<p>{html.escape(first)} lost no pair.</p>"
    parts = []
    for o in lost:
        task = by_id[o.pair]
        reasons = "".join(f"<h4>order {order}</h4><pre>{html.escape(judgments[f'{o.pair}|{order}'].get('raw', ''))}"
                          f"</pre>" for order in ("AB", "BA"))
        reference = "" if REFERENCE in (first, second) or not task.reference else \
            f"<p><b>reference</b></p><pre>{html.escape(task.reference)}</pre>"
        parts.append(
            f"<h3>{html.escape(o.pair)} (margin {o.margin})</h3><pre>{html.escape(task.prompt)}</pre>"
            f"<table class='side'><tr><th>{html.escape(first)}</th><th>{html.escape(second)}</th></tr><tr>"
            f"<td><pre>{html.escape(answer_text(first, task, by_model))}</pre></td>"
            f"<td><pre>{html.escape(answer_text(second, task, by_model))}</pre></td></tr></table>"
            f"{reference}<details><summary>the judge's two replies</summary>{reasons}</details>")
    return "".join(parts)


def write_report(summary: dict[str, Any], found: list[Outcome], tasks: list[EvalTask], answers: list[dict[str, Any]],
                 judgments: dict[str, dict[str, Any]]) -> str:
    first, second, r = summary["first"], summary["second"], summary["results"]
    lengths: dict[str, list[int]] = {}
    for row in answers:
        lengths.setdefault(row["model"], []).append(len(words(row["answer"])))
    if REFERENCE in (first, second):
        lengths[REFERENCE] = [len(words(t.reference or "")) for t in tasks]
    bias = summary["position_bias"]
    facts = [("status", summary["status"]), ("judge", summary["judge"]), ("prompts", summary["tasks"]["count"]),
             ("pairs judged in both orders", r["pairs"]), ("unjudged pairs", summary["unjudged_pairs"] or "none"),
             ("win / tie / loss", f"{r['win']['count']} / {r['tie']['count']} / {r['loss']['count']}"),
             ("win rate (ties half), 95% CI", f"{_fmt(r['win_rate'])} [{_fmt(r['win_rate_ci95'][0])}, "
                                               f"{_fmt(r['win_rate_ci95'][1])}]"),
             ("verdict changed with the order", _fmt(bias["rate"])), ("intervals", r["intervals"])]
    title = f"synth eval: {first} vs {second}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} th, td {{ border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
table.side {{ width: 100%; table-layout: fixed; }} figure {{ margin: 1.5rem 0; }} img {{ max-width: 100%; }}
figcaption {{ color: #555; font-size: .9rem; }} pre {{ background: #f6f6f6; padding: .6rem; white-space: pre-wrap; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{_rows(facts)}</table>
{_img(results_plot(summary), "Win, tie and loss shares; the dot is the win rate (ties half) with its 95% interval.")}
{_img(length_plot(summary, lengths), "Answer lengths, and the win rate within bins of the length ratio.")}
<h2>Per model</h2>
{model_table(summary)}
<h2>Where {html.escape(first)} lost most clearly</h2>
{clearest_losses(found, tasks, answers, judgments, first, second)}
<h2>Settings</h2>
<pre>{html.escape(json.dumps(summary["settings"], indent=2))}</pre>
</body></html>
"""
