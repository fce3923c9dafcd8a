"""The generate loop: propose (the method) -> filter -> novelty gate -> classify -> instances -> Orca answer -> write.

A readable loop over asyncio. It keeps accepted tasks being answered and asks the method for more while the records
in hand and expected fall short of --num. Every outcome is written at once (ledger.py): a record to data.jsonl, a
rejection or failure (with its reason and raw text) to rejected.jsonl, a task's progress to tasks.jsonl.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from ..errors import BudgetExceeded, FatalTeacherError, StopRequested, StorageError, TeacherError
from ..gate.queue import GateQueue
from ..prompts import template_hash
from ..quality.signals import SignalConfig
from ..tasks import Task
from ..teacher.base import Completion
from .answering import ANSWER_AS_IS, Answering
from .config import GenerateConfig
from .filters import FilterConfig
from .ledger import Progress, RunLog, RunResult
from .methods import DONE, Method, Pool, Proposal
from .proposing import Proposing
from .review import Reviewing
from .runfolder import RunFolder, RunState
from .stages import TEMPLATES

if TYPE_CHECKING:
    from ..gate.novelty import NoveltyGate

__all__ = ["Generator", "Progress", "RunResult"]


def signal_config(config: GenerateConfig) -> SignalConfig | None:
    """The free quality signals' settings for a run (None: not computed)."""
    if not config.signals:
        return None
    base = SignalConfig.from_file(config.signal_config) if config.signal_config else SignalConfig()
    return base.merged({"filter": list(config.signal_filter)}).validate()

# Proposals are asked for until the tasks in hand and in flight would make this much more than --num: a late
# proposal's reply sits at the head of a chain of four calls (classify, instances, answers), so running short at the
# end costs far more wall time than a few spare tasks, which stay in tasks.jsonl for a later --resume --num.
BOOTSTRAP_MARGIN = 1.15


class Generator(Proposing, Answering, Reviewing):
    def __init__(self, config: GenerateConfig, run: RunFolder, teacher: Any, gate: NoveltyGate | None,
                 seeds: list[Task], state: RunState, progress: Progress | None = None,
                 queries: list[Task] | None = None, method: Method | None = None, judge_teacher: Any = None,
                 strong_teacher: Any = None, decontaminator: Any = None):
        self.config, self.run, self.teacher, self.gate = config, run, teacher, gate
        self.decontaminator = decontaminator
        self.judge_teacher, self.strong_teacher = judge_teacher, strong_teacher
        self.seeds, self.state, self.queries, self.method = seeds, state, queries, method
        self.target = config.num or (sum(max(1, len(t.instances)) for t in queries) if queries is not None else 100)
        self.filters = FilterConfig(config.min_words, config.max_words, tuple(config.blacklist), tuple(config.banned_prefixes))
        self.signal_config = signal_config(config)
        names = TEMPLATES + (method.template_names() if method is not None else ())
        self.hashes = {name: template_hash(name) for name in names}
        self.machine = list(state.machine_tasks)
        self.pool = Pool(seeds, self.machine)
        self.pool.lineage.update({i: m.get("lineage") or {} for i, m in state.task_meta.items()})
        self.pool.finished.update(state.completed_tasks)
        self.log = RunLog(run, state, teacher, self.target, len(seeds), progress)
        self.bootstrap_no = state.bootstrap_requests
        self.idle_rounds = 0
        self.yields: list[int] = []
        self.inflight_bootstraps = 0
        self.inflight_tasks = 0
        self.inflight_expected = 0            # records the tasks in flight are expected to make
        self.method_done = False
        self.backlog: deque[tuple[Task, dict[str, Any]]] = deque()   # accepted tasks not yet answered
        self.stop_reason: str | None = None
        self.fatal: BaseException | None = None
        self._gate_queue = GateQueue(gate, on_time=self._add_gate_time) if gate is not None else None
        self._jobs: set[asyncio.Task] = set()
        # Jobs that ended, in the order they ended: each job reports itself, so a loop turn costs the same with 1,024
        # jobs in flight as with 8 (asyncio.wait over every job would add and drop 1,024 callbacks a turn).
        self._ended: list[asyncio.Task] = []
        self._wake = asyncio.Event()

    # ---- the loop -------------------------------------------------------------------------------

    async def run_loop(self) -> RunResult:
        status = "interrupted"
        try:
            self._resume()
            while True:
                if self.teacher.stopping and self.stop_reason is None:
                    self.stop_reason = "interrupted"
                while (self.stop_reason is None and self.backlog and self._expected_records() < self.target
                       and self.inflight_tasks < self._max_inflight_tasks):
                    task, meta = self.backlog.popleft()
                    self._spawn(self._complete_task(task, meta), "task", self._records_from(task))
                while self.stop_reason is None and not self.backlog and self._want_proposal():
                    proposal = self.method.propose(self.bootstrap_no, self.pool)
                    if proposal is None or proposal == DONE:
                        self.method_done = proposal == DONE
                        break
                    self._spawn(self._propose(proposal), "bootstrap")
                    self.bootstrap_no += 1
                if not self._jobs:
                    break
                if not self._ended:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(2.0):
                            await self._wake.wait()
                done, self._ended = self._ended, []
                self._wake.clear()
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

    def _resume(self) -> None:
        """Replay the proposals a crash left in flight, and queue every accepted task not yet completed."""
        if self.method is not None:
            getattr(self.method, "restore", lambda proposals, pool: None)(self.state.proposals, self.pool)
            for number, row in sorted(self.state.unfinished_bootstraps.items()):
                self._spawn(self._propose(Proposal.from_row(row, number), replay=True), "bootstrap")
        for task in self.queries if self.queries is not None else self.machine:
            if task.id not in self.state.completed_tasks:
                self.backlog.append((task, self.state.task_meta.get(task.id, {})))

    def _final_status(self) -> str:
        if self.fatal is not None:
            return "failed"
        if self.stop_reason:
            return self.stop_reason
        if (self.queries is not None or self.method_done) and not self.backlog:
            return "incomplete" if self.queries is not None and sum(self.log.failed.values()) else "completed"
        return "completed" if self.log.records >= self.target else "stalled"

    def _expected_records(self) -> int:
        return self.log.records + self.inflight_expected

    def _records_from(self, task: Task) -> int:
        """How many records a task makes: each instance of a query, or --instances-per-task for a new task."""
        return max(1, len(task.instances)) if task.origin in ANSWER_AS_IS else self.config.instances_per_task

    @property
    def _max_inflight_tasks(self) -> int:
        return 2 * self.config.most_in_flight + 2

    def _want_proposal(self) -> bool:
        """Another proposal while the tasks in flight and expected from proposals in flight fall short."""
        c = self.config
        if self.queries is not None or self.method is None or self.method_done:
            return False
        if self.idle_rounds >= c.max_idle_rounds:
            self.stop_reason = self.stop_reason or "stalled"
            return False
        per_proposal = (sum(self.yields) / len(self.yields)) if self.yields else c.new_tasks_per_prompt * 0.5
        each = 1 if self.method.name == "magpie" else c.instances_per_task
        expected = self._expected_records() + self.inflight_bootstraps * max(per_proposal, 0.5) * each
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
        job.add_done_callback(self._job_ended)

    def _job_ended(self, job: asyncio.Task) -> None:
        self._ended.append(job)
        self._wake.set()

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

    # ---- asking ---------------------------------------------------------------------------------

    async def _ask(self, messages, stage: str, item_id: str, context: dict[str, Any]) -> Completion | None:
        """One chat call. A per-request failure is written with its reason and left unfinished, so --resume sends
        it again; an earlier session's failure that is answered now is marked as retried."""
        return await self._settled(self.teacher.complete(messages), stage, item_id, context)

    async def _ask_text(self, request: Any, stage: str, item_id: str, context: dict[str, Any]) -> Completion | None:
        """One raw completion (Magpie), kept the same way."""
        return await self._settled(self.teacher.complete_text(request.prompt, stop=request.stop, seed=request.seed),
                                   stage, item_id, context)

    async def _settled(self, call, stage: str, item_id: str, context: dict[str, Any]) -> Completion | None:
        try:
            reply = await call
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

    def _add_gate_time(self, seconds: float) -> None:
        self.log.timings["novelty_gate"] += seconds
