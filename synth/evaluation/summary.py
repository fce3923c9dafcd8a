"""summary.json: every number of an evaluation, assembled from the tasks, the answers and the judgments."""

from __future__ import annotations

from typing import Any, Callable

from .judge import Outcome, outcomes
from .metrics import degenerate, length_view, position_bias, rouge_l, win_counts, words
from .tasks import EvalTask

REFERENCE = "reference"


def degenerate_check(tasks: dict[str, EvalTask]) -> Callable[[dict[str, Any]], list[str]] | None:
    """check(answer row) -> the degenerate signals synth.quality finds in it; None where that module is missing."""
    try:
        from ..quality.signals import DEGENERATE, check_response
    except ImportError:
        return None

    def check(row: dict[str, Any]) -> list[str]:
        task = tasks[row["id"]]
        found = check_response(task.instruction or task.prompt, task.input, row["answer"],
                               system_message=task.system, finish_reason=row["finish_reason"],
                               reference_output=task.reference, is_classification=task.is_classification,
                               kind=task.kind)
        return sorted({s.name for s in found if s.name in DEGENERATE})

    return check


def model_numbers(name: str, rows: list[dict[str, Any]], tasks: dict[str, EvalTask], loss: float | None,
                  check) -> dict[str, Any]:
    """One model's answers: lengths, how they ended, ROUGE-L against the references, reference loss, degeneracy."""
    finish: dict[str, int] = {}
    for row in rows:
        finish[row["finish_reason"]] = finish.get(row["finish_reason"], 0) + 1
    scored = [rouge_l(r["answer"], tasks[r["id"]].reference) for r in rows if tasks[r["id"]].reference]
    n = len(rows)
    return {"answers": n, "mean_tokens": sum(r["tokens"] for r in rows) / n if n else None,
            "mean_words": sum(len(words(r["answer"])) for r in rows) / n if n else None,
            "finish_reasons": finish, "rouge_l": sum(scored) / len(scored) if scored else None,
            "rouge_l_tasks": len(scored), "reference_loss": loss,
            "degenerate": degenerate(rows, check) if check else {"unavailable": "synth.quality.signals is missing"}}


def answer_text(name: str, task: EvalTask, by_model: dict[str, dict[str, dict[str, Any]]]) -> str:
    return task.reference or "" if name == REFERENCE else by_model[name][task.id]["answer"]


def assemble(*, mode: str, first: str, second: str, tasks: list[EvalTask], answers: list[dict[str, Any]],
             judgments: dict[str, dict[str, Any]], losses: dict[str, float | None], seed: int
             ) -> tuple[dict[str, Any], list[Outcome]]:
    """The summary's numbers, and each judged pair's outcome (for the report)."""
    by_id = {t.id: t for t in tasks}
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for row in answers:
        by_model.setdefault(row["model"], {})[row["id"]] = row
    found, unjudged = outcomes(judgments, [t.id for t in tasks])
    lengths = {t.id: (len(words(answer_text(first, t, by_model))), len(words(answer_text(second, t, by_model))))
               for t in tasks}
    check = degenerate_check(by_id)
    models = {name: model_numbers(name, list(rows.values()), by_id, losses.get(name), check)
              for name, rows in by_model.items()}
    numbers = {"mode": mode, "first": first, "second": second,
               "results": win_counts(found, seed), "unjudged_pairs": unjudged,
               "position_bias": position_bias(found), "length": length_view(found, lengths), "models": models}
    return numbers, found
