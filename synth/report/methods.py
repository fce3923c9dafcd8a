"""How the tasks were made, in the report: tasks and records per method and per persona, complexity per
Evol-Instruct round (the judge's complexity score where there is one; instruction length and constraint markers
always), and topic coverage of persona-led tasks against tasks made without a persona (or the seeds)."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from typing import Any

from . import diversity as metrics
from .reading import RunData
from .vectors import Vectors

TOP_PERSONAS = 100           # personas listed in report.json; the rest are summed up
NO_PERSONA = "(no persona)"

# What makes an instruction ask for more: a requirement word, a bound, a count of things, a form to follow.
_CONSTRAINT = re.compile(
    r"\b(?:must|should|at least|at most|no more than|no fewer than|not exceed|exactly|only|without|"
    r"do not|don't|never|always|ensure|make sure|include|including|exclude|avoid|limit(?:ed)? to|within|"
    r"under \d+|in the (?:form|style|format) of|formatted as|step[- ]by[- ]step|justify|explain why|"
    r"each of|both|while also|as well as)\b"
    r"|\b\d+\s+(?:words?|sentences?|paragraphs?|items?|bullet(?: point)?s?|steps?|lines?|examples?|characters?|"
    r"points?|reasons?|ways?|tips?)\b",
    re.IGNORECASE)


def constraint_count(text: str) -> int:
    """How many constraint markers an instruction holds: a rough, model-free proxy of its complexity."""
    return len(_CONSTRAINT.findall(text))


def method_of(record: dict[str, Any]) -> str:
    """How a record's task was made; version-1 records (no provenance.method) came from the bootstrap or queries."""
    method = record["provenance"].get("method")
    if method:
        return method
    return {"query": "query", "magpie": "magpie"}.get(record["task"].get("origin"), "self-instruct")


def numbers(data: RunData, vectors: Vectors, *, sample_size: int, clusters: int, seed: int) -> dict[str, Any]:
    return {"by_method": _by_method(data), "personas": _personas(data), "evol": _evol(data),
            "persona_coverage": _persona_coverage(data, vectors, sample_size, clusters, seed)}


def _task_method(row: dict[str, Any], config: dict[str, Any]) -> str:
    return (row.get("lineage") or {}).get("method") or config.get("method") or "self-instruct"


def _by_method(data: RunData) -> dict[str, dict[str, int]]:
    tasks = Counter(_task_method(row, data.config) for row in data.accepted_tasks)
    records = Counter(method_of(r) for r in data.records)
    return {m: {"tasks": tasks.get(m, 0), "records": records.get(m, 0)}
            for m in sorted(set(tasks) | set(records), key=lambda m: (-records.get(m, 0), -tasks.get(m, 0), m))}


def _personas(data: RunData) -> dict[str, Any] | None:
    """Tasks and records per persona; None when no task was persona-led."""
    tasks = Counter(row.get("persona_id") or NO_PERSONA for row in data.accepted_tasks)
    records = Counter(r["provenance"].get("persona_id") or NO_PERSONA for r in data.records)
    used = (set(tasks) | set(records)) - {NO_PERSONA}
    if not used:
        return None
    order = sorted(used, key=lambda p: (-records.get(p, 0), -tasks.get(p, 0), p))
    listed = order[:TOP_PERSONAS]
    by_persona = {p: {"tasks": tasks.get(p, 0), "records": records.get(p, 0),
                      "text": data.personas.get(p)} for p in listed}
    return {"used": len(used), "tasks_with": sum(tasks[p] for p in used), "records_with": sum(records[p] for p in used),
            "tasks_without": tasks.get(NO_PERSONA, 0), "records_without": records.get(NO_PERSONA, 0),
            "by_persona": by_persona, "not_listed": len(order) - len(listed)}


def _evol(data: RunData) -> dict[str, Any] | None:
    """Per Evol-Instruct round: tasks, records, mean instruction words, mean constraint markers, and the judge's mean
    complexity score where records were judged; round 0 is the seeds. And per mutation, what was kept and why the
    rest was eliminated. None when no task has a lineage with rounds."""
    texts: dict[int, dict[str, str]] = defaultdict(dict)       # round -> task id -> instruction
    records: Counter = Counter()
    complexity: dict[int, list[int]] = defaultdict(list)
    kept: Counter = Counter()
    for row in data.accepted_tasks:
        lineage = row.get("lineage") or {}
        if "round" in lineage:
            texts[lineage["round"]][row["task"]["id"]] = row["task"]["instruction"]
            kept[lineage.get("mutation", "?")] += 1
    for record in data.records:
        lineage = record["provenance"].get("lineage") or {}
        if "round" in lineage:
            texts[lineage["round"]][record["task"]["id"]] = record["task"]["instruction"]
            records[lineage["round"]] += 1
            if "complexity" in data.scores.get(record["id"], {}):
                complexity[lineage["round"]].append(data.scores[record["id"]]["complexity"][0])
    if not texts:
        return None
    if 0 not in texts and data.seeds:
        texts[0] = {seed.id: seed.instruction for seed in data.seeds}
    rounds = [_round(number, list(texts[number].values()), records.get(number, 0), complexity.get(number, []))
              for number in sorted(texts)]
    eliminated: dict[str, Counter] = defaultdict(Counter)
    for row in data.rejected:
        if row.get("mutation") and row["kind"] == "rejected":
            eliminated[row["mutation"]][row["reason"]] += 1
    mutations = {m: {"kept": kept.get(m, 0), "eliminated": dict(eliminated[m].most_common())}
                 for m in sorted(set(kept) | set(eliminated))}
    return {"rounds": rounds, "by_mutation": mutations}


def _round(number: int, instructions: list[str], records: int, complexity: list[int]) -> dict[str, Any]:
    return {"round": number, "tasks": len(instructions), "records": records,
            "instruction_words": round(statistics.fmean(len(metrics.words(t)) for t in instructions), 2),
            "constraints": round(statistics.fmean(constraint_count(t) for t in instructions), 3),
            "judge_complexity": round(statistics.fmean(complexity), 3) if complexity else None,
            "judged": len(complexity)}


def _persona_coverage(data: RunData, vectors: Vectors, sample_size: int, clusters: int,
                      seed: int) -> dict[str, Any] | None:
    """Topic coverage of persona-led tasks against the run's tasks made without a persona, or else the seeds: equal
    seeded samples of both, one k-means fit over them, and each group's clusters occupied, Vendi score and mean
    pairwise distance."""
    with_persona = {r["task"]["id"]: r["task"]["instruction"] for r in data.accepted_tasks if r.get("persona_id")}
    if not with_persona:
        return None
    without = {r["task"]["id"]: r["task"]["instruction"] for r in data.accepted_tasks if not r.get("persona_id")}
    compared = "machine tasks of prompts without a persona"
    if len(without) < 2:
        without, compared = {s.id: s.instruction for s in data.seeds}, "the seed tasks"
    size = min(len(with_persona), len(without), sample_size)
    if size < 2:
        return None
    groups = {}
    for name, tasks in (("with_personas", with_persona), ("without", without)):
        ids, texts = list(tasks), list(tasks.values())
        rows = metrics.sample_rows(len(ids), size, seed)
        groups[name] = vectors.of([ids[i] for i in rows], [texts[i] for i in rows])
    coverage = metrics.group_coverage(groups, clusters, seed) or {}
    for name, sample in groups.items():
        distance = metrics.mean_pairwise_cosine_distance(sample)
        coverage.setdefault(name, {}).update(vendi_score=round(metrics.vendi_score(sample), 3),
                                             mean_pairwise_cosine_distance=round(distance, 4))
    return {"compared": compared, "sample_size": size, "sample_seed": seed, "with_personas": coverage["with_personas"],
            "without": coverage["without"], "tasks_with": len(with_persona), "tasks_without": len(without)}
