"""A run's bookkeeping: every outcome written at once, counted, reported, and summed into the manifest.

A record goes to data.jsonl, a rejection or failure (with its reason and raw text) to rejected.jsonl, a task's
progress to tasks.jsonl. A failure answered by a later session is marked "retried", so the counts say what still
stands. The first outcome that shows the teacher answering commits the run folder (an old run it replaces goes).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from .._version import __version__
from ..records import now_iso
from ..tasks import content_id
from ..files import JsonlAppender
from .runfolder import DATA, REJECTED, SCORES, TASKS, RunFolder, RunState

Progress = Callable[[dict[str, Any]], None]


@dataclass
class RunResult:
    path: str
    status: str              # completed | incomplete | stopped_budget | stalled | interrupted | failed
    records: int
    manifest: dict[str, Any]
    message: str = ""


class RunLog:
    def __init__(self, run: RunFolder, state: RunState, teacher: Any, target: int, seed_tasks: int,
                 progress: Progress | None = None):
        self.run, self.state, self.teacher, self.target = run, state, teacher, target
        self.seed_tasks, self.progress = seed_tasks, progress
        self.records = len(state.record_ids)
        self.tasks_accepted = len(state.machine_tasks)
        self.rejected = Counter(state.rejected)
        self.failed = Counter(state.failed)
        self.unfinished: set[str] = set()      # tasks with a failed request: not marked completed, so resumed
        self.progressed = False                # a record, a task or a rejection written: the teacher answers
        self._outcomes_at_start = self._outcomes()
        self.timings: Counter = Counter()      # seconds spent in synth's own stages, not waiting on the teacher
        self._files = {name: _TimedAppender(appender, self.timings) for name, appender in run.appenders().items()}
        self._started = time.monotonic()
        self._started_at = state.manifest.get("started_at") or now_iso()
        self.last_checkpoint = 0.0
        self._scores: JsonlAppender | None = None

    # ---- outcomes -------------------------------------------------------------------------------

    def record(self, record: dict[str, Any]) -> None:
        self._files[DATA].append(record)
        self.state.record_ids.add(record["id"])
        self.records += 1
        self.report()

    def task_line(self, row: dict[str, Any]) -> None:
        """A line of tasks.jsonl: a bootstrap prompt started or done, a task accepted."""
        self._files[TASKS].append(row)
        if row.get("status") == "accepted":
            self.tasks_accepted += 1
            self.report()

    def task_done(self, task_id: str) -> None:
        if task_id in self.unfinished:         # a request failed: --resume finishes the task
            return
        self._files[TASKS].append({"status": "completed", "id": task_id, "at": now_iso()})

    def reject(self, item_id: str, kind: str, stage: str, reason: str, **fields: Any) -> None:
        """A rejection (the teacher answered, the answer is unusable) or a failure (no usable answer came)."""
        rejection_id = content_id("rej", kind, stage, item_id)
        if rejection_id in self.state.rejected_ids or rejection_id in self.state.failed_ids:
            return                            # already written (a replay), or a failure that failed again
        if kind == "failed":
            self.state.failed_ids[rejection_id] = reason
            self.unfinished.add(fields.get("task_id", item_id))
        else:
            self.state.rejected_ids.add(rejection_id)
        (self.failed if kind == "failed" else self.rejected)[reason] += 1
        self._files[REJECTED].append({"id": rejection_id, "kind": kind, "stage": stage, "reason": reason,
                                      **fields, "created_at": now_iso()})
        self.report()

    def score(self, row: dict[str, Any]) -> None:
        """A judge's verdict (or its failure), to RUN/scores.jsonl as `synth judge` writes it."""
        if self._scores is None:
            self._scores = JsonlAppender(self.run.file(SCORES))
        self._scores.append(row)

    def answered(self, item_id: str, stage: str, context: dict[str, Any]) -> None:
        """A request that failed in an earlier session got its reply: the failure no longer stands."""
        failure = content_id("rej", "failed", stage, item_id)
        if failure in self.state.failed_ids:
            reason = self.state.failed_ids.pop(failure)
            self.failed[reason] -= 1
            self.failed = +self.failed
            self._files[REJECTED].append({"id": failure, "kind": "retried", "stage": stage, "reason": reason,
                                          **context, "created_at": now_iso()})

    def _outcomes(self) -> int:
        return self.records + sum(self.rejected.values()) + self.tasks_accepted

    def report(self) -> None:
        if not self.progressed and self._outcomes() > self._outcomes_at_start:
            self.progressed = True
            self.run.commit()                 # the teacher answers: a run this one replaces can go now
        if self.progress:
            self.progress({"records": self.records, "target": self.target,
                           "rejected": sum(self.rejected.values()), "failed": sum(self.failed.values()),
                           "cost": self.teacher.budget.spent, "tasks": self.tasks_accepted})

    @contextlib.contextmanager
    def timed(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] += time.perf_counter() - start

    # ---- the manifest ---------------------------------------------------------------------------

    def checkpoint(self, status: str, bootstrap_requests: int) -> dict[str, Any]:
        prior = self.state.manifest
        manifest = {
            "synth_version": __version__,
            "status": status,
            "teacher": self.teacher.model,
            "started_at": self._started_at,
            "updated_at": now_iso(),
            "elapsed_s": round(prior.get("elapsed_s", 0.0) + time.monotonic() - self._started, 2),
            "sessions": prior.get("sessions", 0) + 1,
            "counts": {
                "seed_tasks": self.seed_tasks,
                "bootstrap_requests": bootstrap_requests,
                "tasks_accepted": self.tasks_accepted,
                "records": self.records,
                "rejected": dict(self.rejected),
                "failed": dict(self.failed),
            },
            "usage": self._usage(prior.get("usage", {})),
            "timings_s": {k: round(v, 3) for k, v in sorted(self.timings.items())},
        }
        endpoints = self.teacher.endpoint_stats()
        if len(endpoints) > 1:
            manifest["endpoints"] = endpoints          # a fleet: requests, failures and latency per server
        if hasattr(self.teacher, "batch_stats"):
            manifest["batch"] = self.teacher.batch_stats()    # jobs, and what the run would have cost online
        if self.teacher.adaptive is not None:
            manifest["concurrency"] = {"final": round(self.teacher.adaptive.limit, 2),
                                       "timeline": self.teacher.adaptive.timeline[-600:]}
        self.run.save_manifest(manifest)
        self.last_checkpoint = time.monotonic()
        return manifest

    def _usage(self, prior: dict[str, Any]) -> dict[str, Any]:
        """Tokens, attempts and cost are sums over the spend ledger, so they stay exact across kills; cache
        lookups are counted per session on top of the last manifest."""
        budget = self.teacher.budget
        teacher, verifier = budget.tally("teacher").settled(), budget.tally("verifier").settled()
        others = {p: budget.tally(p).settled() for p in ("judge", "strong_teacher") if budget.tally(p).requests}
        usage = {"calls": prior.get("calls", 0) + self.teacher.usage.calls,
                 "cached_calls": prior.get("cached_calls", 0) + self.teacher.usage.cached_calls,
                 **{k: teacher[k] for k in ("attempts", "prompt_tokens", "completion_tokens", "cost_usd")}}
        if verifier["requests"]:
            usage["verifier"] = verifier
        if budget.unsettled:
            usage["unsettled_usd"] = round(budget.unsettled, 6)    # reserved by a killed session, never settled
        usage.update(others)                                      # booked per teacher: judge, strong teacher
        usage["total_cost_usd"] = round(teacher["cost_usd"] + verifier["cost_usd"] + budget.unsettled
                                        + sum(o["cost_usd"] for o in others.values()), 6)
        return usage

    def close(self) -> None:
        for appender in list(self._files.values()) + ([self._scores] if self._scores else []):
            with contextlib.suppress(OSError):
                appender.close()

    # ---- what to tell the user ------------------------------------------------------------------

    def message(self, status: str, max_idle_rounds: int) -> str:
        path = self.run.path
        return {
            "interrupted": f"interrupted: everything finished is saved; continue with synth generate --resume {path}",
            "stopped_budget": "stopped at --max-cost; raise it and run again with --resume to go on",
            "stalled": f"stopped: {max_idle_rounds} bootstrap prompts in a row added no new task "
                       f"({self._commonest()}); {self._advice()}",
            "incomplete": f"finished, but {sum(self.failed.values())} request(s) failed for good "
                          f"({self._commonest(self.failed)}); synth generate --resume {path} sends them again "
                          f"({self._advice(self.failed)})",
        }.get(status, "")

    def _commonest(self, counts: Counter | None = None) -> str:
        losses = (counts if counts is not None else self.failed + self.rejected).most_common(3)
        return "most often " + ", ".join(f"{reason} x{count}" for reason, count in losses) if losses else "no replies"

    def _advice(self, counts: Counter | None = None) -> str:
        top = (counts if counts is not None else self.failed + self.rejected).most_common(1)
        reason = top[0][0] if top else ""
        if reason == "finish_length":
            return "the teacher runs out of tokens: raise --max-tokens"
        if reason.startswith("http_") or reason in ("connection", "unreachable", "deadline", "malformed"):
            return "the teacher's calls fail: check --teacher and --api-base, or raise --timeout"
        return "try more seeds, a higher --novelty-threshold or a stronger --teacher"


class _TimedAppender:
    """A JSONL appender that adds its write time to the run's "writing" timing."""

    def __init__(self, appender, timings: Counter):
        self.appender, self.timings = appender, timings

    def append(self, obj: dict[str, Any]) -> None:
        start = time.perf_counter()
        try:
            self.appender.append(obj)
        finally:
            self.timings["writing"] += time.perf_counter() - start

    def close(self) -> None:
        self.appender.close()
