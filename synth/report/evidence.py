"""What the run's data has been checked against: the benchmarks of `generate --decontaminate` (decontamination.json
and the candidates rejected as contaminated), and the evaluations of students trained on it (evals.jsonl, which
`synth eval` appends to, pointing at each evaluation's own folder)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import InputFileError
from .reading import RunData, json_file
from .tables import Link, Table, fmt

EXAMPLES = 20          # contaminated candidates shown, strongest match first


def numbers(data: RunData) -> dict[str, Any]:
    return {"contamination": _contamination(data), "evals": _evals(data)}


def _contamination(data: RunData) -> dict[str, Any] | None:
    summary = data.decontamination
    rows = [r for r in data.rejected if r.get("stage") == "decontaminate"]
    if not summary and not rows:
        return None
    benchmarks = {name: {"items": b.get("items"), "flagged": b.get("flagged", 0), "by_stage": b.get("by_stage", {}),
                         "items_matched": b.get("items_matched", 0)}
                  for name, b in (summary.get("benchmarks") or {}).items() if isinstance(b, dict)}
    found = [r.get("contamination") or {} for r in rows]
    shown = sorted(zip(rows, found), key=lambda pair: (pair[1].get("stage") != "ngram", -(pair[1].get("score") or 0)))
    return {"checked": summary.get("checked"), "flagged": summary.get("flagged", len(rows)),
            "settings": summary.get("settings") or {}, "benchmarks": benchmarks,
            "rejected": dict(Counter(r.get("reason", "contaminated") for r in rows)),
            "examples": [{"candidate": r.get("text", ""), "benchmark": f.get("benchmark"), "item_id": f.get("item_id"),
                          "item_text": f.get("item_text", ""), "stage": f.get("stage"), "score": f.get("score"),
                          "matched": f.get("matched")} for r, f in shown[:EXAMPLES]]}


def _evals(data: RunData) -> list[dict[str, Any]]:
    """The latest pointer per evaluation folder, with that evaluation's summary where it still exists."""
    latest = {row["eval"]: row for row in data.eval_links}
    found = []
    for folder, row in latest.items():
        try:
            summary = json_file(Path(folder) / "summary.json", advice="")          # {} once the folder is gone
            gone = "moved or deleted"
        except InputFileError as exc:      # another command's folder: its damage is noted, not this report's end
            summary, gone = {}, f"unreadable: {exc}"
        results = summary.get("results") or {}
        found.append({"eval": folder, "student": row.get("student"), "first": summary.get("first", row.get("first")),
                      "second": summary.get("second", row.get("second")), "judge": summary.get("judge", row.get("judge")),
                      "pairs": results.get("pairs", row.get("pairs")),
                      "win_rate": results.get("win_rate", row.get("win_rate")),
                      "win_rate_ci95": results.get("win_rate_ci95", row.get("win_rate_ci95")),
                      "status": summary.get("status", row.get("status")) if summary else gone,
                      "report": str(Path(folder) / "report.html")})
    return found


def link_reports(evidence: dict[str, Any], out: Path) -> None:
    """Each evaluation's report as a path relative to the report folder, so the page's link survives a move of both."""
    for row in evidence["evals"]:
        row["href"] = os.path.relpath(row["report"], out.resolve())


def tables(evidence: dict[str, Any]) -> list[tuple[str, list[Table]]]:
    found = []
    contamination = evidence["contamination"]
    if contamination:
        found.append(("Contamination", _contamination_tables(contamination)))
    if evidence["evals"]:
        found.append(("Students trained on this run", [Table(
            "Evaluations", ("student", "against", "judge", "pairs", "win rate", "95% CI", "status", "report"),
            [(Path(e["student"] or "?").name, e["second"], e["judge"], e["pairs"], fmt(e["win_rate"]),
              _interval(e["win_rate_ci95"]), e["status"], Link("report.html", e.get("href") or e["report"]))
             for e in evidence["evals"]],
            "From synth eval on students whose provenance names this run; a win counts 1 and a tie a half.")]))
    return found


def _contamination_tables(c: dict[str, Any]) -> list[Table]:
    settings = c["settings"]
    rows = [(name, b["items"], b["flagged"], ", ".join(f"{k} {n}" for k, n in b["by_stage"].items()) or "none",
             b["items_matched"]) for name, b in c["benchmarks"].items()]
    tables = [Table("Benchmarks checked", ("benchmark", "items", "candidates flagged", "by stage", "items matched"), rows,
                    f"{fmt(c['checked'])} candidate tasks checked before the novelty gate; {fmt(c['flagged'])} "
                    f"rejected. n-gram: {fmt(settings.get('ngram'))} words; embedding similarity "
                    f"{fmt(settings.get('similarity'))}; verifier {fmt(settings.get('verifier'))}.")]
    if c["examples"]:
        tables.append(Table("Candidates rejected as contaminated",
                            ("candidate", "benchmark", "item", "stage", "score", "matched span", "benchmark item"),
                            [(e["candidate"], e["benchmark"], e["item_id"], e["stage"], fmt(e["score"]),
                              e["matched"] or "", e["item_text"]) for e in c["examples"]],
                            f"The {len(c['examples'])} strongest matches (n-gram first)."))
    return tables


def _interval(ci: Any) -> str:
    return f"{fmt(ci[0])} to {fmt(ci[1])}" if isinstance(ci, (list, tuple)) and len(ci) == 2 else "n/a"
