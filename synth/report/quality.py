"""Quality in the report: the judge's scores (histograms per rubric, means by task kind and by system message, how
the quality score follows response length, the lowest-scored records with the judge's reason), the free signals,
the rejections for quality, and what each teacher cost (teacher, verifier, judge, strong teacher)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from ..quality.scores import length_bias
from .reading import RUBRICS, RunData

QUALITY_STAGES = ("quality", "judge")
LOWEST = 10                  # lowest-scored records shown
EXCERPT = 300                # characters of a response shown beside its score
PURPOSES = ("teacher", "verifier", "judge", "strong_teacher")


def scales() -> dict[str, tuple[int, int]]:
    from ..quality.judge import SCALES

    return SCALES


def numbers(data: RunData) -> dict[str, Any]:
    return {"judge": _judge(data), "signals": _signals(data), "rejections": _rejections(data),
            "cost": cost_by_teacher(data), "strong_teacher": _strong(data)}


def _judge(data: RunData) -> dict[str, Any] | None:
    """The judge's verdicts on the kept records; None when no record was judged."""
    if not data.scores:
        return None
    by_id = {r["id"]: r for r in data.records}
    rubrics = {}
    for rubric in RUBRICS:
        scored = [(by_id[i], v[rubric]) for i, v in data.scores.items() if rubric in v]
        if scored:
            rubrics[rubric] = _rubric(rubric, scored, len(data.records))
    quality = [(len(r["response"]), v["quality"][0]) for r in data.records if "quality" in (v := data.scores.get(r["id"], {}))]
    model = (data.scores_summary.get("judge") or data.config.get("judge")
             or next((r["provenance"]["judge"].get("model") for r in data.records if r["provenance"].get("judge")), None))
    return {"model": model, "rubrics": rubrics, "length_bias": length_bias(quality) if quality else None,
            "lowest": _lowest(data), "judged_not_kept": data.judged_not_kept}


def _rubric(rubric: str, scored: list[tuple[dict, tuple[int, str]]], records: int) -> dict[str, Any]:
    low, high = scales().get(rubric, (1, 5))
    counts = Counter(score for _, (score, _) in scored)
    return {"scale": [low, high], "scored": len(scored), "unscored": records - len(scored),
            "histogram": {str(s): counts.get(s, 0) for s in range(low, high + 1)},
            "mean": _mean([score for _, (score, _) in scored]),
            "by_task_kind": _means((r["task"].get("kind") or "unknown", score) for r, (score, _) in scored),
            "by_system_message": _means((r["system_message"]["id"], score) for r, (score, _) in scored)}


def _means(pairs) -> dict[str, dict[str, Any]]:
    """group -> {n, mean}, the largest groups first."""
    groups: dict[str, list[int]] = defaultdict(list)
    for group, score in pairs:
        groups[group].append(score)
    return {g: {"n": len(v), "mean": _mean(v)} for g, v in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))}


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 3) if values else None


def _lowest(data: RunData, count: int = LOWEST) -> list[dict[str, Any]]:
    """The records with the lowest quality scores (ties by id, so the choice is stable), with the judge's reason."""
    scored = sorted((v["quality"][0], r["id"], r) for r in data.records
                    if "quality" in (v := data.scores.get(r["id"], {})))[:count]
    return [{"id": record_id, "score": score, "reason": data.scores[record_id]["quality"][1],
             "task_kind": r["task"].get("kind") or "unknown", "system_message": r["system_message"]["id"],
             "instruction": r["task"]["instruction"], "response": _excerpt(r["response"])}
            for score, record_id, r in scored]


def _excerpt(text: str, limit: int = EXCERPT) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def signal_names(record: dict[str, Any]) -> list[str]:
    """The free quality signals that flag a record, each once (version-1 records have none)."""
    signals = (record.get("quality") or {}).get("signals") or []
    return sorted({s["name"] for s in signals})


def _signals(data: RunData) -> dict[str, Any]:
    from ..quality.signals import SIGNALS

    counts: Counter = Counter()
    flagged = 0
    for record in data.records:
        names = signal_names(record)
        counts.update(names)
        flagged += bool(names)
    order = [s for s in SIGNALS if s in counts] + sorted(set(counts) - set(SIGNALS))
    return {"records_flagged": flagged, "records": len(data.records),
            "by_signal": {name: counts[name] for name in order}}


def _rejections(data: RunData) -> dict[str, dict[str, int]]:
    """Answers rejected for quality (a filtering free signal) or by the judge (--min-quality), by reason."""
    out: dict[str, dict[str, int]] = {}
    for stage in QUALITY_STAGES:
        rows = [r for r in data.rejected if r["stage"] == stage and r["kind"] == "rejected"]
        out[stage] = dict(Counter(r["reason"] for r in rows).most_common())
    judged = [r["score"] for r in data.rejected if r["stage"] == "judge" and r.get("score") is not None]
    out["judge_scores"] = {str(s): n for s, n in sorted(Counter(int(s) for s in judged).items())}
    return out


def cost_by_teacher(data: RunData) -> dict[str, Any]:
    """Requests, tokens and USD per teacher, from the manifest's spend (the spend ledger's sums); the judge's from
    scores.summary.json when `synth judge` ran after generate (the manifest does not know it then). The total is
    their sum, with what a killed session reserved and never settled."""
    usage, config = data.manifest.get("usage", {}), data.config
    summary_usage = data.scores_summary.get("usage") or {}
    rows = {"teacher": {"model": data.manifest.get("teacher") or config.get("teacher"),
                        "requests": usage.get("calls"), "tokens": _tokens(usage), "cost_usd": usage.get("cost_usd")}}
    models = {"verifier": config.get("verifier"), "strong_teacher": config.get("strong_teacher"),
              "judge": data.scores_summary.get("judge") or config.get("judge")}
    for purpose in PURPOSES[1:]:
        tally = usage.get(purpose) or (summary_usage if purpose == "judge" else {})
        if tally:
            rows[purpose] = {"model": models[purpose], "requests": tally.get("requests"), "tokens": _tokens(tally),
                             "cost_usd": tally.get("cost_usd")}
    unsettled = usage.get("unsettled_usd") or 0.0
    total = sum(row["cost_usd"] or 0.0 for row in rows.values()) + unsettled
    return {"by_teacher": rows, "unsettled_usd": unsettled or None, "total_cost_usd": round(total, 6)}


def _tokens(tally: dict[str, Any]) -> int | None:
    if "prompt_tokens" not in tally and "completion_tokens" not in tally:
        return None
    return tally.get("prompt_tokens", 0) + tally.get("completion_tokens", 0)


def _strong(data: RunData) -> dict[str, Any]:
    """How many records a strong teacher re-answered, why, and what the cheap answers it replaced had cost."""
    redone = [r["provenance"]["strong_teacher"] for r in data.records if r["provenance"].get("strong_teacher")]
    return {"records": len(redone), "share": round(len(redone) / len(data.records), 4) if data.records else None,
            "why": dict(Counter(s.get("why", "?") for s in redone).most_common()),
            "cheap_cost_usd": round(sum(s.get("cheap_cost_usd") or 0.0 for s in redone), 6)}
