"""Proposing new tasks, for any method: send the method's request, parse the reply into candidates, then the shared
steps, each rejection with its reason: the filters, the novelty gate (and its verifier), and acceptance into the pool
with the task's lineage. A replayed proposal (after a crash) renders the same request, so its reply comes from the
cache, and a task accepted before the crash is not accepted twice."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..records import now_iso
from ..tasks import Task, content_id
from .filters import filter_reason
from .methods import Candidate, Proposal
from .methods.evol import full_lineage


class Proposing:
    """The proposal side of the Generator (pipeline.py); it uses the Generator's method, pool, log and gate."""

    async def _propose(self, proposal: Proposal, replay: bool = False) -> None:
        if not replay:
            self.log.task_line({"status": "bootstrap_started", "bootstrap_no": proposal.number,
                                "pool_ids": proposal.examples, "proposal": proposal.to_row(), "at": now_iso()})
        try:
            await self._ask_and_judge(proposal)
        finally:
            getattr(self.method, "finished", lambda p: None)(proposal)
        self.log.task_line({"status": "bootstrap_done", "bootstrap_no": proposal.number, "at": now_iso()})

    async def _ask_and_judge(self, proposal: Proposal) -> None:
        where = {"bootstrap_no": proposal.number}
        request = self.method.request(proposal, self.pool)
        item = f"b{proposal.number}"
        if request.prompt is not None:
            reply = await self._ask_text(request, self.method.stage, item, where)
        else:
            reply = await self._ask(request.messages, self.method.stage, item, where)
        if reply is None:
            self.idle_rounds += 1
            return
        with self.log.timed("parsing"):
            parsed = self.method.parse(proposal, reply.text)
        if isinstance(parsed, str):
            self.log.reject(item, "rejected", "parse", parsed, **where, text=reply.text)
            self.idle_rounds += 1
            self.yields.append(0)
            return
        accepted = await self._judge_candidates(proposal, parsed, where)
        self.yields.append(accepted)
        self.idle_rounds = 0 if accepted else self.idle_rounds + 1

    async def _judge_candidates(self, proposal: Proposal, candidates: list[Candidate], where: dict[str, Any]) -> int:
        kept: list[tuple[str, Candidate]] = []
        known = {t.id for t in self.machine}
        for i, candidate in enumerate(candidates):
            reason = filter_reason(candidate.text, self.filters)
            task_id = content_id("task", candidate.text, str(proposal.number), str(i))
            if reason:
                self.log.reject(f"b{proposal.number}:{i}", "rejected", "filter", reason, **where, text=candidate.text)
            elif task_id not in known:      # a replayed proposal: this task was accepted before the crash
                kept.append((task_id, candidate))
        kept = await self._clean(kept, where)
        if not kept:
            return 0
        verdicts = await self._gate_queue.check([i for i, _ in kept], [c.text for _, c in kept])
        accepted = 0
        for (task_id, candidate), verdict in zip(kept, verdicts):
            if verdict.accepted:
                accepted += 1
                self._accept_task(task_id, candidate, verdict, proposal)
            else:
                reason = "near_duplicate" if verdict.stage == "embedding" else "same_task"
                self.log.reject(task_id, "rejected", "novelty", reason, **where, text=candidate.text,
                                novelty_stage=verdict.stage, neighbour_id=verdict.neighbour_id,
                                score=round(verdict.score, 4), **_family(candidate))
        return accepted

    async def _clean(self, kept: list[tuple[str, Candidate]], where: dict[str, Any]) -> list[tuple[str, Candidate]]:
        """--decontaminate: a candidate that copies or rephrases a benchmark item is rejected before the gate, so
        it never joins the pool, with the benchmark, the item and the matched span."""
        if self.decontaminator is None or not kept:
            return kept
        started = time.perf_counter()
        flags = await asyncio.to_thread(self.decontaminator.check, [c.text for _, c in kept])
        self.log.timings["decontamination"] += time.perf_counter() - started
        clean = []
        for (task_id, candidate), flag in zip(kept, flags):
            if flag is None:
                clean.append((task_id, candidate))
            else:
                self.log.reject(task_id, "rejected", "decontaminate", flag.reason, **where, text=candidate.text,
                                contamination=flag.as_dict())
        return clean

    def _accept_task(self, task_id: str, candidate: Candidate, verdict: Any, proposal: Proposal) -> None:
        origin = "magpie" if candidate.answer_directly else "machine"
        task = Task(task_id, candidate.text, origin=origin)
        lineage = candidate.lineage
        if lineage.get("method") == "evol":
            lineage = full_lineage(lineage, self.pool.lineage.get(lineage["parent_id"]))
        meta = {
            "status": "accepted", "task": task.to_dict(), "bootstrap_no": proposal.number,
            "prompt_pool_ids": proposal.examples, "lineage": lineage, "persona_id": candidate.persona_id,
            "novelty": {"neighbour_id": verdict.neighbour_id,
                        "score": None if verdict.score is None else round(verdict.score, 4),
                        "threshold": self.config.novelty_threshold, "stage": verdict.stage},
            "created_at": now_iso(),
        }
        self.machine.append(task)
        self.pool.lineage[task_id] = lineage
        self.backlog.append((task, meta))
        self.log.task_line(meta)


def _family(candidate: Candidate) -> dict[str, Any]:
    """What a rejected mutation came from, so the report can show it beside its parent."""
    lineage = candidate.lineage
    return {"parent_id": lineage["parent_id"], "mutation": lineage["mutation"]} if "parent_id" in lineage else {}
