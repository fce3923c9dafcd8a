"""What the report reads from each file of a run, checked field by field before any number is made: a line synth
did not write is a one-line error naming the file and line, never a KeyError or TypeError deep in the report."""

from __future__ import annotations

import json
from typing import Any

from ..files import fields_problem
from ..formats import record_problem

NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))


def record(row: Any) -> str | None:
    """A data.jsonl line: a synth record, with the provenance fields the report sums."""
    problem = record_problem(row)
    if problem:
        return f"not a synth record ({problem})"
    prov = row["provenance"]
    problem = _optional(prov, usage=(dict, type(None)), cost_usd=OPTIONAL_NUMBER, teacher=str)
    if problem:
        return _nested("provenance", problem)
    if isinstance(prov.get("usage"), dict):
        problem = _optional(prov["usage"], total_tokens=int)
        if problem:
            return _nested("provenance.usage", problem)
    return (_nested("task", _optional(row["task"], kind=(str, type(None))))
            or _provenance_v2(prov) or _nested("quality", _quality(row)))


def _provenance_v2(prov: dict[str, Any]) -> str | None:
    """Schema 2's fields (method, lineage, persona, judge, strong teacher), where a record has them."""
    problem = _optional(prov, method=str, lineage=(dict, type(None)), persona_id=(str, type(None)),
                        schema_version=int, judge=dict, strong_teacher=dict)
    if problem:
        return _nested("provenance", problem)
    if isinstance(prov.get("lineage"), dict):
        problem = _lineage(prov["lineage"])
        if problem:
            return _nested("provenance.lineage", problem)
    judge = prov.get("judge", {})
    for rubric in ("quality", "complexity"):
        if rubric in judge:
            problem = _object(judge[rubric], score=int, reason=str)
            if problem:
                return _nested(f"provenance.judge.{rubric}", problem)
    if "strong_teacher" in prov:
        return _nested("provenance.strong_teacher", _optional(prov["strong_teacher"], why=str, cheap_teacher=str,
                                                              cheap_response=str, cheap_cost_usd=OPTIONAL_NUMBER))
    return None


def _lineage(lineage: dict[str, Any]) -> str | None:
    return (_optional(lineage, method=str, round=int, mutation=str, parent_id=str, root_id=str, mutations=list)
            or _each("mutations", lineage.get("mutations", []), round=int, mutation=str))


def _quality(row: dict[str, Any]) -> str | None:
    """The free quality signals a record carries: a list of {name, detail}."""
    if "quality" not in row:
        return None
    quality = row["quality"]
    problem = _object(quality) or _optional(quality, signals=list)
    return problem or _each("signals", quality.get("signals", []), name=str, detail=str)


def _object(value: Any, **kinds) -> str | None:
    """`value` is an object with those fields."""
    if not isinstance(value, dict):
        return f"it is {json.dumps(value)[:40]}, not an object"
    return fields_problem(value, **kinds)


def _each(owner: str, items: list[Any], **kinds) -> str | None:
    """Every item of a list is an object with those fields."""
    for number, item in enumerate(items):
        problem = _object(item, **kinds)
        if problem:
            return f"in {owner}[{number}], {problem}"
    return None


def rejected(row: dict[str, Any]) -> str | None:
    """A rejected.jsonl line: a rejection, failure or retry with its reason, stage and (where it has one) score."""
    return fields_problem(row, kind=str, reason=str, stage=str) or _optional(
        row, score=OPTIONAL_NUMBER, bootstrap_no=int, neighbour_id=(str, type(None)), text=str, detail=str,
        parent_id=str, mutation=str)


def task(row: dict[str, Any]) -> str | None:
    """A tasks.jsonl line; accepted tasks carry the task, the prompt that made it and its novelty verdict."""
    problem = fields_problem(row, status=str)
    if problem or row["status"] != "accepted":
        return problem
    problem = fields_problem(row, task=dict) or _nested("task", fields_problem(row["task"], id=str, instruction=str))
    problem = problem or _optional(row, bootstrap_no=int, novelty=(dict, type(None)), lineage=(dict, type(None)),
                                   persona_id=(str, type(None)))
    problem = problem or (_nested("lineage", _lineage(row["lineage"])) if isinstance(row.get("lineage"), dict)
                          else None)
    if problem or not isinstance(row.get("novelty"), dict):
        return problem
    return _nested("novelty", _optional(row["novelty"], score=OPTIONAL_NUMBER, stage=str))


def manifest(value: dict[str, Any]) -> str | None:
    """manifest.json: the counts and usage the report shows."""
    problem = _optional(value, status=str, counts=dict, usage=dict)
    if problem:
        return problem
    counts, usage = value.get("counts", {}), value.get("usage", {})
    problem = (_nested("counts", _optional(counts, **{k: int for k in ("seed_tasks", "bootstrap_requests",
                                                                      "tasks_accepted", "records")}))
               or _nested("usage", _optional(usage, prompt_tokens=int, completion_tokens=int, cost_usd=NUMBER,
                                             total_cost_usd=NUMBER, calls=int, unsettled_usd=NUMBER,
                                             **{p: dict for p in PURPOSES})))
    for purpose in PURPOSES:
        problem = problem or _nested(f"usage.{purpose}", _spend(usage.get(purpose, {})))
    return problem or _operations(value)


PURPOSES = ("verifier", "judge", "strong_teacher")


def _spend(tally: dict[str, Any]) -> str | None:
    """A teacher's settled spend: requests, attempts, tokens, cost."""
    return _optional(tally, requests=int, attempts=int, prompt_tokens=int, completion_tokens=int, cost_usd=NUMBER)


def _operations(value: dict[str, Any]) -> str | None:
    """A fleet's endpoints, --concurrency auto's timeline and --batch's jobs, where the manifest has them."""
    problem = _optional(value, endpoints=dict, concurrency=dict, batch=dict)
    if problem:
        return problem
    for url, stats in value.get("endpoints", {}).items():
        problem = _object(stats) or _optional(stats, requests=int, failures=int, times_taken_out=int,
                                              mean_latency_s=OPTIONAL_NUMBER)
        if problem:
            return _nested(f"endpoints[{url[:60]!r}]", problem)
    concurrency = value.get("concurrency", {})
    problem = _optional(concurrency, final=NUMBER, timeline=list)
    if problem:
        return _nested("concurrency", problem)
    for number, point in enumerate(concurrency.get("timeline", [])):
        if not (isinstance(point, list) and len(point) == 4 and all(
                isinstance(x, NUMBER) and not isinstance(x, bool) for x in point)):
            return (f"in concurrency, timeline point {number} is {json.dumps(point)[:40]}, not [seconds, limit, "
                    "in flight, replies]")
    return _nested("batch", _optional(value.get("batch", {}), jobs=int, resubmitted_jobs=int, requests=int,
                                      failed=int, cost_usd=NUMBER, online_equivalent_usd=NUMBER))


def config(value: dict[str, Any]) -> str | None:
    """config.json: the settings the report needs to read the gate."""
    return _optional(value, novelty_threshold=NUMBER, embedder=str, seeds=(str, type(None)), method=str,
                     personas=(str, type(None)), rounds=int, judge=(str, type(None)),
                     strong_teacher=(str, type(None)), teacher=str)


def scores_summary(value: dict[str, Any]) -> str | None:
    """scores.summary.json: the judge's model and spend."""
    problem = _optional(value, judge=str, usage=dict)
    return problem or _nested("usage", _spend(value.get("usage", {})))


def _optional(row: dict[str, Any], **kinds) -> str | None:
    """Like fields_problem, for the fields that are present."""
    present = {name: kind for name, kind in kinds.items() if name in row}
    return fields_problem(row, **present) if present else None


def _nested(owner: str, problem: str | None) -> str | None:
    return f"in {owner}, {problem}" if problem else None
