"""The page's example browser: every record (above `size`, a seeded sample of that size, stated on the page)
readable one by one and filterable, and every rejected candidate beside the pool task it repeats.

The data goes into the page as JSON inside <script type="application/json">, with every `<`, `>` and `&` written
as a JSON escape, so no record text can end the script element; browser.js builds the view with textContent
only, so no record text is ever parsed as HTML. Rows are arrays (their field names sent once) with the repeated
strings (kinds, system messages, signals...) sent once in lookup lists: the page stays small and loads fast."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from .diversity import sample_rows
from .methods import method_of
from .quality import signal_names
from .reading import RunData

MAX_TEXT = 20_000            # characters of one text in the browser; the full text is in the run's files
RECORD_FIELDS = ("id", "kind", "system", "method", "persona", "teacher", "quality", "quality_reason", "complexity",
                 "complexity_reason", "signals", "instruction", "input", "response", "reference", "lineage",
                 "parent", "strong")
REJECTED_FIELDS = ("id", "outcome", "stage", "reason", "text", "score", "neighbour", "parent", "mutation", "detail")
LOOKUPS = ("kind", "system", "method", "persona", "teacher", "signal", "outcome", "stage", "reason")
_ASSETS = Path(__file__).parent


class _Lookups:
    """Each repeated string once; rows hold its index."""

    def __init__(self):
        self.values: dict[str, dict[str, int]] = {name: {} for name in LOOKUPS}

    def __call__(self, name: str, value: str | None) -> int | None:
        if value is None:
            return None
        table = self.values[name]
        return table.setdefault(value, len(table))

    def lists(self) -> dict[str, list[str]]:
        return {name: list(table) for name, table in self.values.items()}


def cut(text: str | None, limit: int = MAX_TEXT) -> str:
    text = text or ""
    return text if len(text) <= limit else (f"{text[:limit]}\n[… {len(text) - limit} more characters in the run's "
                                            "files]")


def browser_data(data: RunData, size: int, seed: int) -> dict[str, Any]:
    """What the browser shows, as JSON-ready lists; the records and rejections sampled (seeded) above `size`."""
    lookups, pool = _Lookups(), {}
    record_rows = sample_rows(len(data.records), size, seed)
    rejected_rows = sample_rows(len(data.rejected), size, seed)
    records = [_record(data.records[i], data, lookups, pool) for i in record_rows]
    rejected = [_rejection(data.rejected[i], data, lookups, pool) for i in rejected_rows]
    system_text = {r["system_message"]["id"]: r["system_message"]["text"] for r in data.records}
    lists = lookups.lists()
    return {
        "record_fields": RECORD_FIELDS, "rejected_fields": REJECTED_FIELDS, "lookups": lists,
        "system_text": [system_text.get(s, "") for s in lists["system"]],
        "persona_text": [data.personas.get(p, "") for p in lists["persona"]],
        "records": records, "rejected": rejected, "pool": pool,
        "threshold": data.config.get("novelty_threshold", 0.9),
        "sample": {"size": size, "seed": seed, "records": len(records), "records_total": len(data.records),
                   "rejected": len(rejected), "rejected_total": len(data.rejected)},
    }


def _record(r: dict[str, Any], data: RunData, lookups: _Lookups, pool: dict[str, str]) -> list[Any]:
    prov = r["provenance"]
    verdicts = data.scores.get(r["id"], {})
    quality, complexity = verdicts.get("quality", (None, None)), verdicts.get("complexity", (None, None))
    signals = {s["name"]: s["detail"] for s in (r.get("quality") or {}).get("signals") or []}
    lineage = prov.get("lineage") or {}
    parent = _pool_ref(lineage.get("parent_id"), data, pool)
    strong = prov.get("strong_teacher")
    return [r["id"], lookups("kind", r["task"].get("kind") or "unknown"), lookups("system", r["system_message"]["id"]),
            lookups("method", method_of(r)), lookups("persona", prov.get("persona_id")),
            lookups("teacher", prov.get("teacher", "?")), quality[0], quality[1], complexity[0], complexity[1],
            [[lookups("signal", name), signals[name]] for name in signal_names(r)],
            cut(r["task"]["instruction"]), cut(r["instance"]["input"]), cut(r["response"]),
            cut(r["instance"]["reference_output"]), _lineage_line(lineage), parent,
            [strong.get("cheap_teacher", "?"), strong.get("why", "?"), cut(strong.get("cheap_response"))]
            if strong else None]


def _lineage_line(lineage: dict[str, Any]) -> str | None:
    """An evolved task's history in one line: root, then each mutation and its round."""
    if "round" not in lineage:
        return None
    steps = lineage.get("mutations") or [{"round": lineage["round"], "mutation": lineage.get("mutation", "?")}]
    return " → ".join([f"root {lineage.get('root_id', '?')}"]
                      + [f"{s.get('mutation', '?')} (round {s.get('round', '?')})" for s in steps])


def _pool_ref(task_id: str | None, data: RunData, pool: dict[str, str]) -> str | None:
    """A pool task's id, its text put once into `pool` (when the run still knows it)."""
    if task_id and task_id not in pool and task_id in data.pool_texts:
        pool[task_id] = cut(data.pool_texts[task_id])
    return task_id


def _rejection(row: dict[str, Any], data: RunData, lookups: _Lookups, pool: dict[str, str]) -> list[Any]:
    return [row.get("id"), lookups("outcome", row["kind"]), lookups("stage", row["stage"]),
            lookups("reason", row["reason"]), cut(row.get("text")), _finite(row.get("score")),
            _pool_ref(row.get("neighbour_id"), data, pool), _pool_ref(row.get("parent_id"), data, pool),
            row.get("mutation"), cut(row.get("detail"), 2_000)]


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>` or `&` (they become \\u003c...), and the two line
    separators JavaScript once treated as line ends escaped too."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)   # NaN is no JSON
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def sample_line(sample: dict[str, Any]) -> str:
    parts = []
    for name, label in (("records", "records"), ("rejected", "rejected and failed candidates")):
        shown, total = sample[name], sample[f"{name}_total"]
        parts.append(f"all {total:,} {label}" if shown == total else
                     f"a seeded sample of {shown:,} of the {total:,} {label} (seed {sample['seed']})")
    return (f"The browser holds {parts[0]} and {parts[1]}; above {sample['size']:,} it takes a seeded sample of that "
            f"size (synth report --browser-size).")


def browser_html(data: dict[str, Any]) -> str:
    """The browser's section of the page: its frame, its data, its script."""
    script = (_ASSETS / "browser.js").read_text(encoding="utf-8")       # holds no "</" (a test sees to it)
    frame = (_ASSETS / "browser.html").read_text(encoding="utf-8")
    return frame.format(sample=html.escape(sample_line(data["sample"])), data=script_json(data), script=script)
