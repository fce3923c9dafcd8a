"""Stage 3, optional: a model asked whether a row is the same problem as the benchmark item the embedding stage found
near it, for rows in the band between the recall threshold and the similarity threshold.

It is synth's `LLMVerifier` (its request cache, retries, outage breaker, costing and event-loop handling) with the
question in `prompts/same_benchmark_item.txt`, asked about the row and the item in that order: unlike "are these the
same task?", the question is not symmetric.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..gate.verifier import LLMVerifier
from ..prompts import render

TEMPLATE = "same_benchmark_item"


class BenchmarkItemVerifier(LLMVerifier):
    stage = "llm_verifier"

    def messages(self, row: str, item: str) -> list[dict[str, str]]:    # type: ignore[override]
        return [{"role": "user", "content": render(TEMPLATE, row=row.strip(), item=item.strip())}]


def open_verifier(model: str, settings, folder: Path, stack: contextlib.ExitStack):
    """A BenchmarkItemVerifier on `model`, opened through the teacher session every command shares (key check,
    request cache and spend ledger in `folder` unless --cache names another cache; the embedded model for "local"),
    asked at temperature 0 for a one-word answer. It stops the command, with one line, when the model answers none
    of its requests. Everything it opens is closed by `stack`."""
    from ..gate.dedup import StopWhenVerifierIsDown
    from ..teacher.session import TeacherSession, check_teacher

    key = check_teacher(model, settings)
    teacher = stack.enter_context(TeacherSession(model, settings, folder=folder, purpose="verifier", api_key=key,
                                                 temperature=0.0, max_tokens=16))
    verifier = BenchmarkItemVerifier(teacher)
    stack.callback(verifier.close)
    return StopWhenVerifierIsDown(verifier)
