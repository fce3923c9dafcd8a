"""What the report reads from each file of a run, checked field by field before any number is made: a line synth
did not write is a one-line error naming the file and line, never a KeyError or TypeError deep in the report."""

from __future__ import annotations

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
    return _nested("task", _optional(row["task"], kind=(str, type(None))))


def rejected(row: dict[str, Any]) -> str | None:
    """A rejected.jsonl line: a rejection, failure or retry with its reason, stage and (where it has one) score."""
    return fields_problem(row, kind=str, reason=str, stage=str) or _optional(row, score=OPTIONAL_NUMBER,
                                                                               bootstrap_no=int)


def task(row: dict[str, Any]) -> str | None:
    """A tasks.jsonl line; accepted tasks carry the task, the prompt that made it and its novelty verdict."""
    problem = fields_problem(row, status=str)
    if problem or row["status"] != "accepted":
        return problem
    problem = fields_problem(row, task=dict) or _nested("task", fields_problem(row["task"], id=str, instruction=str))
    problem = problem or _optional(row, bootstrap_no=int, novelty=(dict, type(None)))
    if problem or not isinstance(row.get("novelty"), dict):
        return problem
    return _nested("novelty", _optional(row["novelty"], score=OPTIONAL_NUMBER, stage=str))


def manifest(value: dict[str, Any]) -> str | None:
    """manifest.json: the counts and usage the report shows."""
    problem = _optional(value, status=str, counts=dict, usage=dict)
    if problem:
        return problem
    counts, usage = value.get("counts", {}), value.get("usage", {})
    return (_nested("counts", _optional(counts, **{k: int for k in ("seed_tasks", "bootstrap_requests",
                                                                   "tasks_accepted", "records")}))
            or _nested("usage", _optional(usage, prompt_tokens=int, completion_tokens=int, cost_usd=NUMBER,
                                          total_cost_usd=NUMBER)))


def config(value: dict[str, Any]) -> str | None:
    """config.json: the settings the report needs to read the gate."""
    return _optional(value, novelty_threshold=NUMBER, embedder=str, seeds=(str, type(None)))


def _optional(row: dict[str, Any], **kinds) -> str | None:
    """Like fields_problem, for the fields that are present."""
    present = {name: kind for name, kind in kinds.items() if name in row}
    return fields_problem(row, **present) if present else None


def _nested(owner: str, problem: str | None) -> str | None:
    return f"in {owner}, {problem}" if problem else None
