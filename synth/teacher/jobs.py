"""Many independent requests through one teacher, each ending exactly once, resumable: the engine of `synth judge`,
`synth eval`'s judge and every other command that asks a model about rows it already has.

A job is an id and the messages to send. Its outcome is appended to a JSONL file as soon as it ends: the parsed result
(status "ok"), or a failure with its reason and the raw text (status "failed"), never a silent default. A rerun skips
the ids already answered in the file and sends the failed ones again; replies also come from the request cache, so a
kill costs nothing paid twice. The first Ctrl-C stops sending and lets requests in flight end; a second cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

from ..errors import BudgetExceeded, FatalTeacherError, StopRequested, TeacherError
from ..files import JsonlAppender, read_complete_lines
from ..records import now_iso


class VerdictError(ValueError):
    """A reply that does not parse: `reason` names why; the raw text is kept with the failure."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


@dataclass
class Job:
    id: str
    messages: list[dict[str, str]]
    fields: dict[str, Any] = field(default_factory=dict)      # copied into the outcome row


@dataclass
class JobsResult:
    answered: int = 0
    failed: Counter = field(default_factory=Counter)
    skipped: int = 0                  # answered in an earlier session
    stopped: str | None = None        # "stopped_budget" or "interrupted"


def answered_ids(path: Path) -> set[str]:
    """The ids whose latest outcome in `path` is an answer."""
    latest: dict[str, str] = {}
    for row in read_complete_lines(Path(path)):
        if isinstance(row.get("id"), str):
            latest[row["id"]] = row.get("status", "")
    return {i for i, status in latest.items() if status == "ok"}


def latest_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The latest outcome row of each id in `path`."""
    rows: dict[str, dict[str, Any]] = {}
    for row in read_complete_lines(Path(path)):
        if isinstance(row.get("id"), str):
            rows[row["id"]] = row
    return rows


async def run_jobs(teacher: Any, jobs: Iterable[Job], parse: Callable[[str], Any], out: Path, *,
                   progress: Callable[[JobsResult], None] | None = None) -> JobsResult:
    """Send every job not yet answered in `out`, parse each reply with `parse` (which raises VerdictError), and
    append each outcome to `out`. Workers pull jobs one at a time, so a million jobs are never a million tasks."""
    result = JobsResult()
    done = answered_ids(out)
    pending = iter(jobs)
    sink = JsonlAppender(Path(out))

    async def worker() -> None:
        for job in pending:
            if result.stopped:
                return
            if job.id in done:
                result.skipped += 1
                continue
            await _one(teacher, job, parse, sink, result)
            if progress:
                progress(result)

    workers = max(1, min(teacher.options.concurrency * 2, 4096))
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        sink.close()
    return result


async def _one(teacher: Any, job: Job, parse: Callable[[str], Any], sink: JsonlAppender, result: JobsResult) -> None:
    base = {"id": job.id, **job.fields, "model": teacher.model, "created_at": now_iso()}
    try:
        reply = await teacher.complete(job.messages)
    except BudgetExceeded:
        result.stopped = "stopped_budget"
        return
    except StopRequested:
        result.stopped = result.stopped or "interrupted"
        return
    except FatalTeacherError:
        raise
    except TeacherError as exc:
        result.failed[exc.reason] += 1
        sink.append({**base, "status": "failed", "reason": exc.reason, "detail": str(exc)})
        return
    paid = {"raw": reply.text, "usage": reply.usage, "cost_usd": reply.cost, "cached": reply.cached}
    try:
        parsed = parse(reply.text)
    except VerdictError as exc:
        if teacher.cache is not None:          # an unparseable reply is not kept: a rerun asks again
            teacher.cache.delete(teacher.cache_key(teacher.request(job.messages)))
        result.failed[exc.reason] += 1
        sink.append({**base, "status": "failed", "reason": exc.reason, "detail": str(exc), **paid})
        return
    result.answered += 1
    sink.append({**base, "status": "ok", "result": parsed, **paid})


def run_with_stop_signals(make: Callable[[], Awaitable[Any]], teachers: list[Any]) -> Any:
    """asyncio.run(make()), where the first Ctrl-C or SIGTERM sets every teacher stopping (nothing new is sent,
    every wait ends, requests in flight finish) and a second one cancels what is left."""

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_signal() -> None:
            if all(t.stopping for t in teachers) and task is not None:
                task.cancel()
            for t in teachers:
                t.stopping = True

        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):   # not the main thread
                loop.add_signal_handler(sig, on_signal)
                installed.append(sig)
        try:
            return await make()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            for t in teachers:
                await t.aclose()

    return asyncio.run(main())
