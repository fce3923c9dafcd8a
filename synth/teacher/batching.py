"""Provider batch APIs at a discount, behind the same `complete(messages)` as an online teacher, so the pipeline runs
unchanged: `synth generate --batch`.

Requests queue up; once the pipeline has sent everything it can for now (nothing new for `settle` seconds) or a job is
full (`batch_size`), the queued requests go out as one job: through litellm's Files and Batches API (OpenAI, and any
OpenAI-compatible server with /v1/files and /v1/batches) or Anthropic's Message Batches (`batch_apis`). Self-Instruct's stages depend on each other, so a run goes
in rounds: bootstrap prompts, then classify, instances and answers, each round a job per stage.

- Resume: every job is written to `batches.jsonl` (its id, its input file, the cache keys and the spend-ledger tickets
  it carries, each state it reaches) before anything waits on it. A resumed run re-attaches to the jobs already
  submitted and never submits a request twice; a job's answers go to the request cache as it ends.
- Failures: a failed or expired request inside a finished job goes into the next job, up to --max-retries times; a job
  the provider fails as a whole is submitted once more. Every request ends exactly once: a reply or a failure.
- Costs: each request's worst case is reserved (at the batch price) before its job is submitted and settled with its
  real cost after (also when a resumed session collects a killed session's job); `stats` says what the same
  requests would have cost online.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import StopRequested, TeacherError, TransientTeacherError
from ..files import JsonlAppender, read_complete_lines
from ..records import now_iso
from .base import Completion
from .batch_apis import TERMINAL, Answers, Job, batch_api
from .budget import Ticket, prompt_tokens_bound

BATCHES = "batches.jsonl"


@dataclass
class _Pending:
    key: str
    body: dict[str, Any]
    messages: list[dict[str, str]]
    future: asyncio.Future
    tries: int = 0
    ticket: Ticket | None = None


@dataclass
class BatchStats:
    jobs: int = 0
    resubmitted_jobs: int = 0
    reattached_jobs: int = 0
    requests: int = 0
    failed: int = 0
    cost: float = 0.0
    online_cost: float = 0.0
    states: dict[str, str] = field(default_factory=dict)     # job id -> last state seen

    def as_dict(self, discount: float) -> dict[str, Any]:
        return {"jobs": self.jobs, "resubmitted_jobs": self.resubmitted_jobs, "reattached_jobs": self.reattached_jobs,
                "requests": self.requests, "failed": self.failed, "discount": discount,
                "cost_usd": round(self.cost, 6), "online_equivalent_usd": round(self.online_cost, 6)}


class BatchTeacher:
    """Wraps a LiteLLMTeacher (its options, cache, budget and usage) with batch jobs in place of online calls."""

    def __init__(self, teacher: Any, folder: Path, *, batch_size: int, discount: float, poll: float = 30.0,
                 settle: float = 1.0, window: str = "24h", log: Callable[[str], None] | None = None):
        self.teacher, self.folder = teacher, Path(folder)
        self.batch_size, self.discount, self.poll, self.settle, self.window = batch_size, discount, poll, settle, window
        self.say = log or (lambda line: None)
        self.api = batch_api(teacher.model, teacher.options.api_base, teacher._api_key)
        self.stats = BatchStats()
        self._queue: list[_Pending] = []
        self._last_enqueue = 0.0
        self._waiting: dict[str, _Pending] = {}          # key -> the request the pipeline waits for
        self._earlier = self._earlier_jobs()             # job id -> (keys, tickets), submitted by a killed session
        self._attached = {key: job for job, (keys, _, _) in self._earlier.items() for key in keys}
        self._followed: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._flusher: asyncio.Task | None = None
        self._ledger: JsonlAppender | None = None

    def __getattr__(self, name: str) -> Any:           # model, options, budget, usage, cache, adaptive...
        return getattr(self.teacher, name)

    @property
    def stopping(self) -> bool:
        return self.teacher.stopping

    @stopping.setter
    def stopping(self, value: bool) -> None:
        self.teacher.stopping = value

    # ---- what the pipeline sees -------------------------------------------------------------------

    async def complete(self, messages: list[dict[str, str]]) -> Completion:
        request = self.teacher.request(messages)
        key = self.teacher.cache_key(request)
        if self.teacher.cache.get(key) is not None:
            return await self.teacher.complete(messages)         # answered by an earlier job: from the cache
        if key in self._waiting:                                 # the same request twice: one answer for both
            return await asyncio.shield(self._waiting[key].future)
        if self.stopping:
            raise StopRequested("stopping: no new batch requests")
        pending = _Pending(key, {k: v for k, v in request.items() if k != "api_base"}, messages, asyncio.get_running_loop().create_future())
        self._waiting[key] = pending
        if key in self._attached:
            self._follow_earlier(self._attached[key])
        else:
            self._enqueue([pending])
        return await asyncio.shield(pending.future)

    def _enqueue(self, items: list[_Pending]) -> None:
        self._queue.extend(items)
        self._last_enqueue = time.monotonic()
        if self._flusher is None or self._flusher.done():
            self._flusher = self._spawn(self._flush_loop())

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- new jobs -----------------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while self._queue:
            quiet = time.monotonic() - self._last_enqueue
            if len(self._queue) < self.batch_size and quiet < self.settle and not self.stopping:
                await asyncio.sleep(min(self.settle - quiet, 0.1) + 0.01)
                continue
            take, self._queue = self._queue[: self.batch_size], self._queue[self.batch_size:]
            self._spawn(self._run_job(take))

    async def _run_job(self, items: list[_Pending], second_try: bool = False) -> None:
        try:
            self._reserve(items)
            job_id = await self._submit(items)
            job = await self._wait(job_id)
            if job.status == "failed":
                self._settle_new(items, {})
                self._record({"job": job_id, "state": "collected"})
                if second_try:
                    self.stats.failed += len(items)
                    self._fail(items, TransientTeacherError("batch_failed", f"the provider failed job {job_id}, "
                                                                            "and the same job before it"))
                    return
                self.stats.resubmitted_jobs += 1
                self.say(f"batch {job_id}: the provider failed the whole job; submitting it once more")
                await self._run_job(items, second_try=True)
                return
            answers = await self.api.results(job)
            self._settle_new(items, answers)
            self._cache(answers)
            self._record({"job": job_id, "state": "collected"})
            self._deliver(items, answers)
        except BaseException as exc:
            self._fail(items, exc)

    async def _submit(self, items: list[_Pending]) -> str:
        """Upload the requests and create the job. The job's keys and tickets are written down with a tag before it
        is created, and the tag goes with it as metadata: a kill between the two is found again on resume."""
        lines = [(p.key, p.body) for p in items]
        upload = await self.api.upload(lines)
        tag = uuid.uuid4().hex
        self._record({"tag": tag, "input_file": upload, "keys": [p.key for p in items], "since": time.time(),
                      "tickets": [[p.ticket.session, p.ticket.number] for p in items], "state": "submitting"})
        job_id = await self.api.create(upload, lines, tag, self.window)
        self._record({"tag": tag, "job": job_id, "state": "submitted"})
        self.stats.jobs += 1
        self.say(f"batch {job_id}: submitted {len(items)} requests")
        return job_id

    # ---- jobs of a killed session -------------------------------------------------------------------

    def _earlier_jobs(self) -> dict[str, tuple[list[str], list[list[int]], float]]:
        """Jobs a killed session submitted and never collected, by tag: job id (or the tag, for a job whose creation
        a kill may have cut off) -> (keys, tickets, when it was written down)."""
        by_tag: dict[str, tuple[list[str], list[list[int]], float]] = {}
        job_of: dict[str, str] = {}
        collected = set()
        for row in read_complete_lines(self.folder / BATCHES):
            if "keys" in row:
                by_tag[row["tag"]] = (row["keys"], row.get("tickets") or [], float(row.get("since") or 0))
            if "job" in row and "tag" in row:
                job_of[row["tag"]] = row["job"]
            if row.get("state") == "collected":
                collected.add(row.get("job"))
        self._known = set(job_of.values())
        jobs = {job_of.get(tag, f"tag:{tag}"): value for tag, value in by_tag.items()}
        return {job: value for job, value in jobs.items() if job not in collected}

    def _follow_earlier(self, job_id: str) -> None:
        if job_id not in self._followed:
            self._followed.add(job_id)
            self.stats.reattached_jobs += 1
            self.say(f"batch {job_id}: re-attached after a restart; not submitted again")
            self._spawn(self._collect_earlier(job_id))

    async def _collect_earlier(self, job_id: str) -> None:
        keys, tickets, since = self._earlier[job_id]
        try:
            if job_id.startswith("tag:"):            # killed while creating it: did the provider get it?
                found = await self.api.find_tagged(job_id[4:], since, len(keys), self._known)
                if found is None:
                    self._release_unsubmitted(keys, tickets)
                    return
                self._record({"tag": job_id[4:], "job": found, "state": "submitted"})
                job_id = found
            job = await self._wait(job_id)
            answers = await self.api.results(job) if job.status != "failed" else {}
        except BaseException as exc:
            self._fail([self._waiting[k] for k in keys if k in self._waiting], exc)
            return
        budget = self.teacher.budget
        for key, (session, number) in zip(keys, tickets):
            online, cost, prompt, completion = self._price(answers.get(key))
            budget.settle_earlier(session, number, cost, purpose=self.teacher.options.purpose, attempts=1,
                                  prompt_tokens=prompt, completion_tokens=completion)
            self._count(online, cost)
        self._cache(answers)
        self._record({"job": job_id, "state": "collected"})
        for key in keys:
            self._attached.pop(key, None)
        self._deliver([self._waiting[k] for k in keys if k in self._waiting], answers)

    def _release_unsubmitted(self, keys: list[str], tickets: list[list[int]]) -> None:
        """A job whose creation a kill cut off before the provider had it: its requests go out in a new job."""
        for key, (session, number) in zip(keys, tickets):
            self.teacher.budget.settle_earlier(session, number, 0.0, purpose=self.teacher.options.purpose)
            self._attached.pop(key, None)
        waiting = [self._waiting[k] for k in keys if k in self._waiting]
        self._enqueue(waiting)

    # ---- following a job to its end -----------------------------------------------------------------

    async def _wait(self, job_id: str) -> Job:
        started = time.monotonic()
        while True:
            job = await self.api.retrieve(job_id)
            if self.stats.states.get(job_id) != job.status:
                self.stats.states[job_id] = job.status
                self._record({"job": job_id, "state": job.status})
                self.say(f"batch {job_id}: {job.status}, {job.completed}/{job.total} done, {job.failed} failed, "
                         f"{time.monotonic() - started:.0f}s elapsed (completion window {self.window})")
            if job.status in TERMINAL:
                return job
            await self.teacher.pause(self.poll)

    def _cache(self, answers: Answers) -> None:
        for key, (status, body) in answers.items():
            if status == 200 and isinstance(body, dict):
                completion = self._completion(body)
                self.teacher.cache.put(key, {k: v for k, v in completion.__dict__.items()
                                             if k not in ("cached", "attempts")})

    def _deliver(self, items: list[_Pending], answers: Answers) -> None:
        """Answer the waiting requests; the ones that failed go into the next job, up to --max-retries times."""
        retry = []
        for pending in items:
            status, body = answers.get(pending.key, (0, None))
            if status == 200 and isinstance(body, dict):
                self._waiting.pop(pending.key, None)
                if not pending.future.done():
                    try:
                        pending.future.set_result(self.teacher._finish(self._completion(body)))
                    except TeacherError as exc:          # cut at length, filtered, empty: judged as online replies
                        pending.future.set_exception(exc)
            elif pending.tries < self.teacher.options.max_retries and not self.stopping:
                pending.tries += 1
                retry.append(pending)
            else:
                self.stats.failed += 1
                reason = f"http_{status}" if status else "batch_expired"
                self._fail([pending], TeacherError(reason, f"batch request failed ({reason}) in "
                                                           f"{pending.tries + 1} job(s)"))
        if retry:
            self._enqueue(retry)

    def _completion(self, body: dict[str, Any]) -> Completion:
        from ..formats import repair

        choice = (body.get("choices") or [{}])[0]
        _, cost, prompt, completion = self._price((200, body))
        return Completion(repair((choice.get("message") or {}).get("content") or ""), choice.get("finish_reason"),
                          prompt, completion, cost)

    # ---- money ----------------------------------------------------------------------------------------

    def _price(self, answer: tuple[int, Any] | None) -> tuple[float, float, int, int]:
        """(online cost, batch cost, prompt tokens, completion tokens) of one answer (zeros for a failure)."""
        status, body = answer or (0, None)
        usage = body.get("usage") or {} if status == 200 and isinstance(body, dict) else {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        online = (self.teacher.prices.cost(prompt, completion) or 0.0) if usage else 0.0
        return online, online * (1 - self.discount), prompt, completion

    def _reserve(self, items: list[_Pending]) -> None:
        """Reserve the whole job's worst case before it is submitted (BudgetExceeded stops the run cleanly)."""
        budget, factor = self.teacher.budget, 1 - self.discount
        for pending in items:
            if pending.ticket is None:
                worst = 0.0
                if budget.cap is not None:
                    worst = (self.teacher.prices.cost(prompt_tokens_bound(self.teacher.model, pending.messages),
                                                      self.teacher.options.max_tokens) or 0.0) * factor
                pending.ticket = budget.reserve(worst)

    def _settle_new(self, items: list[_Pending], answers: Answers) -> None:
        for pending in items:
            online, cost, prompt, completion = self._price(answers.get(pending.key))
            self.teacher.budget.settle(pending.ticket, cost, purpose=self.teacher.options.purpose, attempts=1,
                                       prompt_tokens=prompt, completion_tokens=completion)
            pending.ticket = None
            self._count(online, cost)

    def _count(self, online: float, cost: float) -> None:
        self.stats.requests += 1
        self.stats.cost += cost
        self.stats.online_cost += online

    def batch_stats(self) -> dict[str, Any]:
        return self.stats.as_dict(self.discount)

    # ---- plumbing -------------------------------------------------------------------------------------

    def _record(self, row: dict[str, Any]) -> None:
        if self._ledger is None:
            self._ledger = JsonlAppender(self.folder / BATCHES)
        self._ledger.append({**row, "at": now_iso()})

    def _fail(self, items: list[_Pending], exc: BaseException) -> None:
        for pending in items:
            self._waiting.pop(pending.key, None)
            if pending.ticket is not None:
                self.teacher.budget.settle(pending.ticket, 0.0, purpose=self.teacher.options.purpose)
                pending.ticket = None
            if not pending.future.done():
                pending.future.set_exception(exc if isinstance(exc, Exception) else StopRequested("stopped"))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ledger is not None:
            self._ledger.close()
        await self.teacher.aclose()
        await self.api.aclose()
