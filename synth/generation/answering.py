"""Answering an accepted task, for any method: classify it, make its instances (input-first, or output-first for a
classification task), and have the teacher answer each instance under the Orca system message its kind calls for.
A query (explanation mode) or a Magpie query is answered as it is, every instance of it. Each answer becomes a record
with its provenance, checked against the schema before it is written."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from .._version import __version__
from ..quality.signals import record_signals
from ..records import SCHEMA_VERSION, now_iso, schema_errors
from ..tasks import Task, content_id
from ..teacher.base import Completion
from .kinds import infer_kind
from .parsing import parse_instances, parse_yes_no
from .stages import answer_messages, choose_system_message, classify_messages, instances_messages

ANSWER_AS_IS = ("query", "magpie")


class Answering:
    """The answer side of the Generator (pipeline.py)."""

    async def _complete_task(self, task: Task, meta: dict[str, Any]) -> None:
        if task.origin in ANSWER_AS_IS:      # a query: every instance of it is answered as it is
            task.is_classification = bool(task.is_classification)
            task.kind = task.kind or infer_kind(task.instruction, task.is_classification)
            instances = task.instances or [{"input": "", "output": ""}]
        else:
            instances = await self._instances(task)
        if instances:
            await asyncio.gather(*(self._answer(task, meta, i, inst) for i, inst in enumerate(instances)))
        self._task_done(task)

    async def _instances(self, task: Task) -> list[dict[str, str]]:
        c = self.config
        if task.is_classification is None:
            reply = await self._ask(classify_messages(task), "classify", task.id, {"task_id": task.id})
            if reply is None:
                return []
            task.is_classification = bool(parse_yes_no(reply.text))
        task.kind = task.kind or infer_kind(task.instruction, task.is_classification)
        reply = await self._ask(instances_messages(task, c.instances_per_task), "instances", task.id,
                                {"task_id": task.id})
        if reply is None:
            return []
        with self.log.timed("parsing"):
            instances = _distinct_inputs(parse_instances(reply.text, output_first=task.is_classification))
        if not instances:
            self.log.reject(f"{task.id}:instances", "rejected", "parse", "unparseable_instances", task_id=task.id,
                            text=reply.text)
        return instances[: c.instances_per_task]

    async def _answer(self, task: Task, meta: dict[str, Any], index: int, instance: dict[str, str]) -> None:
        record_id = content_id("rec", task.id, str(index), instance["input"])
        if record_id in self.state.record_ids:
            self.pool.recorded.add(task.id)
            return
        system = choose_system_message(task.kind or "open_qa", random.Random(f"{self.config.seed}:system:{record_id}"))
        context = {"task_id": task.id, "instance_index": index}
        reply = await self._ask(answer_messages(system, task.instruction, instance["input"]), "answer", record_id, context)
        if reply is None:
            return
        record = self._record(record_id, task, meta, index, instance, system, reply)
        if self.signal_config is not None:
            with self.log.timed("signals"):
                signals = record_signals(record, self.signal_config)
            if signals:
                record["quality"] = {"signals": [{"name": s.name, "detail": s.detail} for s in signals]}
            rejecting = self.signal_config.rejects(signals)
            if rejecting:                       # a degenerate answer: rejected with its reason, not written
                self.log.reject(record_id, "rejected", "quality", rejecting[0].name, **context,
                                detail=rejecting[0].detail, text=reply.text)
                return
        if self.judge_teacher is not None or self.strong_teacher is not None:
            record = await self._review(record, context)
            if record is None:
                return
        with self.log.timed("validating"):
            errors = schema_errors(record)
        if errors:
            self.log.reject(record_id, "failed", "validate", "schema_invalid", **context, detail="; ".join(errors[:3]),
                            text=reply.text)
            return
        self.pool.recorded.add(task.id)
        self.log.record(record)

    def _record(self, record_id: str, task: Task, meta: dict[str, Any], index: int, instance: dict[str, str],
                system: Any, reply: Completion) -> dict[str, Any]:
        return {
            "id": record_id,
            "task": {"id": task.id, "instruction": task.instruction, "is_classification": bool(task.is_classification),
                     "kind": task.kind, "origin": task.origin},
            "instance": {"index": index, "input": instance["input"], "reference_output": instance["output"]},
            "system_message": {"id": system.id, "text": system.text},
            "response": reply.text.strip(),
            "provenance": {
                "teacher": self.teacher.model, "finish_reason": reply.finish_reason,
                "prompt_pool_ids": meta.get("prompt_pool_ids", []), "template_hashes": self.hashes,
                "system_message_id": system.id, "usage": reply.usage, "cost_usd": reply.cost, "cached": reply.cached,
                "novelty": meta.get("novelty", {"neighbour_id": None, "score": None,
                                                 "threshold": self.config.novelty_threshold, "stage": "embedding"}),
                "method": (meta.get("lineage") or {}).get("method") or _method_of(task, self.method),
                "lineage": meta.get("lineage") if (meta.get("lineage") or {}).get("method") == "evol" else None,
                "persona_id": meta.get("persona_id"),
                "created_at": now_iso(), "task_created_at": meta.get("created_at", now_iso()),
                "run_seed": self.config.seed, "synth_version": __version__, "schema_version": SCHEMA_VERSION,
            },
        }

    def _task_done(self, task: Task) -> None:
        self.pool.finished.add(task.id)
        self.log.task_done(task.id)


def _method_of(task: Task, method: Any) -> str:
    return "query" if task.origin == "query" or method is None else method.name


def _distinct_inputs(instances: list[dict[str, str]]) -> list[dict[str, str]]:
    seen, result = set(), []
    for inst in instances:
        key = " ".join(inst["input"].lower().split())
        if key not in seen:
            seen.add(key)
            result.append(inst)
    return result
