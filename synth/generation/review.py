"""Reviewing answers as they arrive: `--judge MODEL --min-quality N` scores each answer with the quality rubric
(`synth judge`'s, through the same teacher layer) and rejects the ones below N as `low_quality` with the judge's
reason; `--strong-teacher MODEL --strong-when ...` has a stronger teacher re-answer a subset (Orca's ChatGPT -> GPT-4
progression). Both answers are kept in the record's provenance, the record uses the strong one, and every teacher's
cost is booked under its own name in the spend ledger. Verdicts also go to RUN/scores.jsonl, as `synth judge` writes
them, so `synth select` and `synth report` read them the same way.
"""

from __future__ import annotations

import random
from typing import Any

from ..errors import BudgetExceeded, FatalTeacherError, StopRequested, TeacherError
from ..prompts import template_hash
from ..quality.judge import parse_verdict, render_rubric
from ..records import now_iso
from ..teacher.jobs import VerdictError


class Reviewing:
    """The review side of the Generator: judge, and a strong teacher for a subset."""

    async def _review(self, record: dict[str, Any], context: dict[str, Any]) -> dict[str, Any] | None:
        """The record to write (perhaps re-answered by the strong teacher), or None when it was rejected."""
        c = self.config
        quality = await self._verdict(record, "quality") if self.judge_teacher is not None else None
        strong = False
        if self.strong_teacher is not None:
            strong = await self._complex_task(record) if c.strong_when == "complex" else \
                self._wants_strong(record, quality)
        if strong:
            record = await self._strong_answer(record, quality, context)
            if record is None:
                return None
            if self.judge_teacher is not None:
                quality = await self._verdict(record, "quality")
        if quality is not None and c.min_quality is not None and quality["score"] < c.min_quality:
            self.log.reject(record["id"], "rejected", "judge", "low_quality", **context, score=quality["score"],
                            detail=quality["reason"], text=record["response"])
            return None
        return record

    async def _verdict(self, record: dict[str, Any], rubric: str) -> dict[str, Any] | None:
        """The judge's verdict on one record (None when it gave none: the failure is written, the record kept)."""
        judge = self.judge_teacher
        messages = render_rubric(rubric, record)
        row = {"id": f"{record['id']}#{rubric}", "record_id": record["id"], "rubric": rubric,
               "template_hash": template_hash(f"judge_{rubric}"), "model": judge.model, "created_at": now_iso()}
        try:
            reply = await judge.complete(messages)
        except (FatalTeacherError, BudgetExceeded, StopRequested):
            raise
        except TeacherError as exc:
            self.log.score({**row, "status": "failed", "reason": exc.reason, "detail": str(exc)})
            return None
        paid = {"raw": reply.text, "usage": reply.usage, "cost_usd": reply.cost, "cached": reply.cached}
        try:
            verdict = parse_verdict(reply.text, rubric)
        except VerdictError as exc:
            self.log.score({**row, "status": "failed", "reason": exc.reason, "detail": str(exc), **paid})
            return None
        self.log.score({**row, "status": "ok", "result": verdict, **paid})
        record.setdefault("provenance", {}).setdefault("judge", {"model": judge.model})[rubric] = verdict
        return verdict

    def _wants_strong(self, record: dict[str, Any], quality: dict[str, Any] | None) -> bool:
        when = self.config.strong_when
        if when == "low_quality":
            return quality is not None and quality["score"] < (self.config.min_quality or 4)
        if when.startswith("fraction:"):
            share = float(when.split(":", 1)[1])
            return random.Random(f"{self.config.seed}:strong:{record['id']}").random() < share
        return False

    async def _strong_answer(self, record: dict[str, Any], quality: dict[str, Any] | None,
                             context: dict[str, Any]) -> dict[str, Any] | None:
        from .stages import answer_messages

        system = record["system_message"]
        messages = answer_messages(_System(system["id"], system["text"]), record["task"]["instruction"],
                                   record["instance"]["input"])
        reply = await self._settled(self.strong_teacher.complete(messages), "strong_answer", record["id"], context)
        if reply is None:
            return None
        prov = record["provenance"]
        why = ("judged " + str(quality["score"])) if quality else self.config.strong_when
        prov["strong_teacher"] = {"why": why, "cheap_teacher": prov["teacher"], "cheap_response": record["response"],
                                  "cheap_cost_usd": prov["cost_usd"], "cheap_usage": prov["usage"]}
        prov.pop("judge", None)            # the verdict was on the cheap answer
        prov.update(teacher=self.strong_teacher.model, finish_reason=reply.finish_reason, usage=reply.usage,
                    cost_usd=reply.cost, cached=reply.cached)
        record["response"] = reply.text.strip()
        return record

    async def _complex_task(self, record: dict[str, Any]) -> bool:
        """--strong-when complex: the judge's complexity score of the task reaches 4 of 6."""
        verdict = await self._verdict(record, "complexity")
        return verdict is not None and verdict["score"] >= 4


class _System:
    def __init__(self, id: str, text: str):
        self.id, self.text = id, text
