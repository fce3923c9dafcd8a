"""The generate loop: bootstrap -> filter -> novelty gate -> classify -> instances -> Orca answer -> write.

A readable loop over asyncio. Every outcome is written at once: a record to data.jsonl, a rejection or
failure (with its reason and raw text) to rejected.jsonl, an accepted task to tasks.jsonl.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import BudgetExceeded, FatalTeacherError, StopRequested, StorageError, TeacherError
from ..gate.queue import GateQueue
from ..records import now_iso, schema_errors
from ..tasks import Task, content_id
from ..teacher.client import Completion, LiteLLMTeacher
from .config import GenerateConfig
from .filters import FilterConfig, filter_reason
from .kinds import infer_kind
from .ledger import Progress, RunLog, RunResult
from .parsing import parse_instances, parse_numbered_list, parse_yes_no
from .runfolder import RunFolder, RunState
from .stages import (answer_messages, bootstrap_messages, choose_system_message, classify_messages,
                     instances_messages, sample_examples, template_hashes)

if TYPE_CHECKING:
    from ..gate.novelty import NoveltyGate, Verdict

__all__ = ["Generator", "Progress", "RunResult"]

# Bootstrap prompts are asked for until the tasks in hand and in flight would make this much more than --num: a late
# bootstrap reply sits at the head of a chain of four calls (classify, instances, answers), so running short at the
# end costs far more wall time than a few spare tasks, which stay in tasks.jsonl for a later --resume --num.
BOOTSTRAP_MARGIN = 1.15


class Generator:
    def __init__(self, config: GenerateConfig, run: RunFolder, teacher: LiteLLMTeacher, gate: NoveltyGate | None,
                 seeds: list[Task], state: RunState, progress: Progress | None = None,
                 queries: list[Task] | None = None):
        self.config, self.run, self.teacher, self.gate = config, run, teacher, gate
        self.seeds, self.state, self.progress = seeds, state, progress
        self.queries = queries
        self.target = config.num or (sum(max(1, len(t.instances)) for t in queries) if queries is not None else 100)
        self.filters = FilterConfig(config.min_words, config.max_words, tuple(config.blacklist), tuple(config.banned_prefixes))
        self.hashes = template_hashes()
        self.machine = list(state.machine_tasks)
        self.log = RunLog(run, state, teacher, self.target, len(seeds), progress)
        self.bootstrap_no = state.bootstrap_requests
        self.idle_rounds = 0
        self.yields: list[int] = []
        self.inflight_bootstraps = 0
        self.inflight_tasks = 0
        self.inflight_expected = 0            # records the tasks in flight are expected to make
        self.backlog: deque[tuple[Task, dict[str, Any]]] = deque()   # accepted tasks not yet answered
        self.stop_reason: str | None = None
        self.fatal: BaseException | None = None
        self._gate_queue = GateQueue(gate, on_time=self._add_gate_time) if gate is not None else None
        self._jobs: set[asyncio.Task] = set()

    # ---- the loop -------------------------------------------------------------------------------

    async def run_loop(self) -> RunResult:
        status = "interrupted"
        try:
            for number, pool_ids in sorted(self.state.unfinished_bootstraps.items()):
                self._spawn(self._bootstrap(number, pool_ids), "bootstrap")
            for task in self.queries if self.queries is not None else self.machine:
                if task.id not in self.state.completed_tasks:
                    self.backlog.append((task, self.state.task_meta.get(task.id, {})))
            while True:
                if self.teacher.stopping and self.stop_reason is None:
                    self.stop_reason = "interrupted"
                while (self.stop_reason is None and self.backlog and self._expected_records() < self.target
                       and self.inflight_tasks < self._max_inflight_tasks):
                    task, meta = self.backlog.popleft()
                    self._spawn(self._complete_task(task, meta), "task", self._records_from(task))
                while self.stop_reason is None and not self.backlog and self._want_bootstrap():
                    self._spawn(self._bootstrap(self.bootstrap_no), "bootstrap")
                    self.bootstrap_no += 1
                if not self._jobs:
                    break
                done, _ = await asyncio.wait(self._jobs, timeout=2.0, return_when=asyncio.FIRST_COMPLETED)
                for job in done:
                    self._jobs.discard(job)
                    self._absorb(job)
                if self.fatal is not None:
                    await self._cancel_all()
                    break
                if time.monotonic() - self.log.last_checkpoint > 2.0:
                    self.log.checkpoint("running", self.bootstrap_no)
            status = self._final_status()
        except asyncio.CancelledError:        # a second Ctrl-C: stop at once, but still save and report
            asyncio.current_task().uncancel()
            status = "interrupted"
        finally:
            if status == "interrupted":
                await self._cancel_all()
            try:
                manifest = self.log.checkpoint(status, self.bootstrap_no)
            except OSError:   # a full disk: the JSONL files are the truth, the manifest only sums them up
                manifest = {}
            self.log.close()
        if self.fatal is not None:
            raise self.fatal
        return RunResult(str(self.run.path), status, self.log.records, manifest,
                         self.log.message(status, self.config.max_idle_rounds))

    def _final_status(self) -> str:
        if self.fatal is not None:
            return "failed"
        if self.stop_reason:
            return self.stop_reason
        if self.queries is not None and not self.backlog:
            return "incomplete" if sum(self.log.failed.values()) else "completed"
        return "completed" if self.log.records >= self.target else "stalled"

    def _expected_records(self) -> int:
        return self.log.records + self.inflight_expected

    def _records_from(self, task: Task) -> int:
        """How many records a task makes: each instance of a query, or --instances-per-task for a new task."""
        return max(1, len(task.instances)) if task.origin == "query" else self.config.instances_per_task

    @property
    def _max_inflight_tasks(self) -> int:
        return 2 * self.config.most_in_flight + 2

    def _want_bootstrap(self) -> bool:
        """Another bootstrap prompt while the tasks in flight and expected from prompts in flight fall short."""
        c = self.config
        if self.queries is not None:
            return False
        if self.idle_rounds >= c.max_idle_rounds:
            self.stop_reason = self.stop_reason or "stalled"
            return False
        per_bootstrap = (sum(self.yields) / len(self.yields)) if self.yields else c.new_tasks_per_prompt * 0.5
        expected = self._expected_records() + self.inflight_bootstraps * max(per_bootstrap, 0.5) * c.instances_per_task
        return expected < self.target * BOOTSTRAP_MARGIN and self.inflight_bootstraps < max(1, c.most_in_flight // 4)

    def _spawn(self, coro, kind: str, expected: int = 0) -> None:
        if kind == "bootstrap":
            self.inflight_bootstraps += 1
        else:
            self.inflight_tasks += 1
            self.inflight_expected += expected
        job = asyncio.ensure_future(coro)
        job.synth_kind, job.synth_expected = kind, expected  # type: ignore[attr-defined]
        self._jobs.add(job)

    def _absorb(self, job: asyncio.Task) -> None:
        if job.synth_kind == "bootstrap":  # type: ignore[attr-defined]
            self.inflight_bootstraps -= 1
        else:
            self.inflight_tasks -= 1
            self.inflight_expected -= job.synth_expected  # type: ignore[attr-defined]
        if job.cancelled():
            return
        error = job.exception()
        if isinstance(error, BudgetExceeded):
            self.stop_reason = "stopped_budget"
        elif isinstance(error, StopRequested):
            self.stop_reason = self.stop_reason or "interrupted"
        elif isinstance(error, (OSError, sqlite3.Error)):
            reason = getattr(error, "strerror", None) or str(error)
            self.fatal = StorageError(f"cannot write to {self.run.path} ({reason}); free space, then continue "
                                      f"with synth generate --resume {self.run.path}")
        elif error is not None:
            self.fatal = error

    async def _cancel_all(self) -> None:
        for job in self._jobs:
            job.cancel()
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        self._jobs.clear()

    # ---- stages ---------------------------------------------------------------------------------

    async def _ask(self, messages, stage: str, item_id: str, context: dict[str, Any]) -> Completion | None:
        """One teacher call. A per-request failure is written with its reason and left unfinished, so --resume
        sends it again; an earlier session's failure that is answered now is marked as retried."""
        try:
            reply = await self.teacher.complete(messages)
        except (FatalTeacherError, BudgetExceeded, StopRequested):
            raise
        except TeacherError as exc:
            # The teacher answered but the answer is unusable (cut at length, filtered, empty): rejected.
            # No usable answer arrived at all: failed.
            kind = "rejected" if exc.reason.startswith(("finish_", "empty_")) else "failed"
            self.log.reject(item_id, kind, stage, exc.reason, **context, detail=str(exc))
            return None
        self.log.answered(item_id, stage, context)
        return reply

    async def _bootstrap(self, number: int, replay_ids: list[str] | None = None) -> None:
        """One bootstrap prompt. A replay (after a crash) shows the same examples, so its reply comes from the cache."""
        c = self.config
        if replay_ids is None:
            rng = random.Random(f"{c.seed}:bootstrap:{number}")
            examples = sample_examples(self.seeds, self.machine, rng, c.prompt_seed_tasks, c.prompt_machine_tasks)
            self.log.task_line({"status": "bootstrap_started", "bootstrap_no": number,
                                "pool_ids": [t.id for t in examples], "at": now_iso()})
        else:
            by_id = {t.id: t for t in self.seeds + self.machine}
            examples = [by_id[i] for i in replay_ids if i in by_id]
        await self._bootstrap_examples(number, examples)
        self.log.task_line({"status": "bootstrap_done", "bootstrap_no": number, "at": now_iso()})

    async def _bootstrap_examples(self, number: int, examples: list[Task]) -> None:
        c = self.config
        pool_ids = [t.id for t in examples]
        where = {"bootstrap_no": number}
        completion = await self._ask(bootstrap_messages(examples, c.new_tasks_per_prompt), "bootstrap",
                                     f"b{number}", where)
        if completion is None:
            self.idle_rounds += 1
            return
        with self.log.timed("parsing"):
            items = parse_numbered_list(completion.text)
        if not items:
            self.log.reject(f"b{number}", "rejected", "parse", "unparseable_list", **where, text=completion.text)
            self.idle_rounds += 1
            self.yields.append(0)
            return
        candidates = []
        known = {t.id for t in self.machine}
        for i, text in enumerate(items):
            reason = filter_reason(text, self.filters)
            task_id = content_id("task", text, str(number), str(i))
            if reason:
                self.log.reject(f"b{number}:{i}", "rejected", "filter", reason, **where, text=text)
            elif task_id not in known:      # a replayed bootstrap: this task was accepted before the crash
                candidates.append((task_id, text))
        accepted = 0
        if candidates:
            verdicts = await self._gate_queue.check([i for i, _ in candidates], [t for _, t in candidates])
            for (task_id, text), verdict in zip(candidates, verdicts):
                if verdict.accepted:
                    accepted += 1
                    self._accept_task(Task(task_id, text, origin="machine"), verdict, pool_ids, number)
                else:
                    reason = "near_duplicate" if verdict.stage == "embedding" else "same_task"
                    self.log.reject(task_id, "rejected", "novelty", reason, **where, text=text, novelty_stage=verdict.stage,
                                 neighbour_id=verdict.neighbour_id, score=round(verdict.score, 4))
        self.yields.append(accepted)
        self.idle_rounds = 0 if accepted else self.idle_rounds + 1

    def _accept_task(self, task: Task, verdict: Verdict, pool_ids: list[str], number: int) -> None:
        meta = {
            "status": "accepted", "task": task.to_dict(), "bootstrap_no": number, "prompt_pool_ids": pool_ids,
            "novelty": {"neighbour_id": verdict.neighbour_id,
                        "score": None if verdict.score is None else round(verdict.score, 4),
                        "threshold": self.config.novelty_threshold, "stage": verdict.stage},
            "created_at": now_iso(),
        }
        self.machine.append(task)
        self.backlog.append((task, meta))
        self.log.task_line(meta)

    async def _complete_task(self, task: Task, meta: dict[str, Any]) -> None:
        c = self.config
        if task.origin == "query":     # explanation mode: every instance of the query is answered
            task.is_classification = bool(task.is_classification)
            task.kind = task.kind or infer_kind(task.instruction, task.is_classification)
            instances = task.instances or [{"input": "", "output": ""}]
            await asyncio.gather(*(self._answer(task, meta, i, inst) for i, inst in enumerate(instances)))
            return self._task_done(task)
        if task.is_classification is None:
            reply = await self._ask(classify_messages(task), "classify", task.id, {"task_id": task.id})
            if reply is None:
                return self._task_done(task)
            task.is_classification = bool(parse_yes_no(reply.text))
        task.kind = task.kind or infer_kind(task.instruction, task.is_classification)
        reply = await self._ask(instances_messages(task, c.instances_per_task), "instances", task.id, {"task_id": task.id})
        if reply is None:
            return self._task_done(task)
        with self.log.timed("parsing"):
            instances = _distinct_inputs(parse_instances(reply.text, output_first=task.is_classification))
        instances = instances[: c.instances_per_task]
        if not instances:
            self.log.reject(f"{task.id}:instances", "rejected", "parse", "unparseable_instances", task_id=task.id, text=reply.text)
            return self._task_done(task)
        await asyncio.gather(*(self._answer(task, meta, i, inst) for i, inst in enumerate(instances)))
        self._task_done(task)

    async def _answer(self, task: Task, meta: dict[str, Any], index: int, instance: dict[str, str]) -> None:
        record_id = content_id("rec", task.id, str(index), instance["input"])
        if record_id in self.state.record_ids:
            return
        system = choose_system_message(task.kind or "open_qa", random.Random(f"{self.config.seed}:system:{record_id}"))
        context = {"task_id": task.id, "instance_index": index}
        reply = await self._ask(answer_messages(system, task.instruction, instance["input"]), "answer", record_id, context)
        if reply is None:
            return
        record = {
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
                "created_at": now_iso(), "task_created_at": meta.get("created_at", now_iso()),
                "run_seed": self.config.seed, "synth_version": __version__,
            },
        }
        with self.log.timed("validating"):
            errors = schema_errors(record)
        if errors:
            self.log.reject(record_id, "failed", "validate", "schema_invalid", **context, detail="; ".join(errors[:3]),
                         text=reply.text)
            return
        self.log.record(record)

    def _add_gate_time(self, seconds: float) -> None:
        self.log.timings["novelty_gate"] += seconds

    def _task_done(self, task: Task) -> None:
        self.log.task_done(task.id)


def _distinct_inputs(instances: list[dict[str, str]]) -> list[dict[str, str]]:
    seen, result = set(), []
    for inst in instances:
        key = " ".join(inst["input"].lower().split())
        if key not in seen:
            seen.add(key)
            result.append(inst)
    return result
