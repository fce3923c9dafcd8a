"""The loopback server's Files and Batches API, as OpenAI serves them (`/v1/files`, `/v1/batches`), and Message
Batches as Anthropic serves them (`/v1/messages/batches`), for tests of `synth generate --batch`.

A job moves one state further each time it is retrieved, through `BatchPlan.states` (validating, in_progress,
finalizing, completed by default). When it completes, every request line goes through the server's own script, as an
online request would: a `Reply` becomes an output line, a `Fault` an error line. A plan can also fail the whole job,
expire it part-way (the requests not yet done end "batch_expired"), or be cancelled. Every upload, job and outcome is
logged, so a test can count what was submitted and what was billed. A Message Batches job runs the same way: its
requests are turned into chat requests for the script, and its results back into Anthropic's shapes (succeeded,
errored, expired, canceled); it is `in_progress` until it has `ended`.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Callable

TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchPlan:
    states: tuple[str, ...] = ("validating", "in_progress", "finalizing", "completed")
    fail_job: bool = False            # the provider fails the job as a whole (no output at all)
    expire_after: int | None = None   # expire with only this many requests done


@dataclass
class BatchJob:
    id: str
    input_file_id: str
    plan: BatchPlan
    lines: list[dict[str, Any]]
    step: int = 0
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0
    metadata: dict[str, str] | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))
    anthropic: bool = False


class BatchService:
    def __init__(self, fake: Any, plan_for: Callable[[int], BatchPlan] | None = None):
        self.fake = fake
        self.plan_for = plan_for or (lambda n: BatchPlan())
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, BatchJob] = {}
        self.submitted: list[str] = []           # job ids, in order of creation
        self._ids = itertools.count(1)
        self._lock = threading.RLock()        # finishing a job stores its files under the same lock

    # ---- files ------------------------------------------------------------------------------------

    def upload(self, raw: bytes, content_type: str) -> dict[str, Any]:
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        data, purpose, name = b"", "batch", "input.jsonl"
        for part in message.iter_parts():
            disposition = part.get_param("name", header="content-disposition")
            if disposition == "file":
                data, name = part.get_payload(decode=True), part.get_filename() or name
            elif disposition == "purpose":
                purpose = part.get_payload(decode=True).decode()
        return self._store(data, purpose, name)

    def _store(self, data: bytes, purpose: str, name: str) -> dict[str, Any]:
        with self._lock:
            file_id = f"file-{next(self._ids):06d}"
            self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                "filename": name, "purpose": purpose, "status": "processed"}

    def content(self, file_id: str) -> bytes | None:
        return self.files.get(file_id)

    # ---- jobs -------------------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any] | None:
        data = self.files.get(body.get("input_file_id", ""))
        if data is None:
            return None
        lines = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        with self._lock:
            job = BatchJob(f"batch_{next(self._ids):06d}", body["input_file_id"], self.plan_for(len(self.submitted)),
                           lines, metadata=body.get("metadata"))
            self.jobs[job.id] = job
            self.submitted.append(job.id)
        return self.view(job)

    def create_messages(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """POST /v1/messages/batches: the requests come inline, each {custom_id, params}."""
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return None
        lines = [{"custom_id": r.get("custom_id"), "body": _chat_body(r.get("params") or {})} for r in requests]
        with self._lock:
            job = BatchJob(f"msgbatch_{next(self._ids):06d}", "", self.plan_for(len(self.submitted)), lines,
                           anthropic=True)
            self.jobs[job.id] = job
            self.submitted.append(job.id)
        return job

    def listing(self) -> dict[str, Any]:
        """Every job, newest first, as GET /v1/batches lists them (without moving any of them on)."""
        jobs = sorted((j for j in self.jobs.values() if not j.anthropic), key=lambda j: j.id, reverse=True)
        data = [self.view(job) for job in jobs]
        return {"object": "list", "data": data, "has_more": False,
                "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}

    def retrieve(self, job_id: str) -> dict[str, Any] | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        with self._lock:
            if job.status not in TERMINAL:
                job.step = min(job.step + 1, len(job.plan.states) - 1)
                job.status = job.plan.states[job.step]
                if job.status == "in_progress" and job.plan.fail_job:
                    job.status = "failed"
                elif job.plan.expire_after is not None and job.status != "validating":
                    self._finish(job, job.plan.expire_after)
                    job.status = "expired"
                elif job.status == "completed":
                    self._finish(job, len(job.lines))
        return self.view(job)

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        with self._lock:
            if job.status not in TERMINAL:
                self._finish(job, 0)
                job.status = "cancelled"
        return self.view(job)

    def _finish(self, job: BatchJob, done: int) -> None:
        """Run the first `done` request lines through the server's script; the rest end as expired."""
        outputs, errors = [], []
        for n, line in enumerate(job.lines):
            custom_id = line.get("custom_id")
            if n >= done:
                errors.append({"id": f"req_{n}", "custom_id": custom_id, "response": None,
                               "error": {"code": "batch_expired", "message": "the job ended before this request"}})
                continue
            status, payload = self.fake.batch_response(line.get("body") or {})
            if status == 200:
                outputs.append({"id": f"req_{n}", "custom_id": custom_id, "response": {"status_code": 200,
                                "request_id": f"r{n}", "body": payload}, "error": None})
            else:
                errors.append({"id": f"req_{n}", "custom_id": custom_id,
                               "response": {"status_code": status, "request_id": f"r{n}", "body": payload},
                               "error": None})
        job.completed, job.failed = len(outputs), len(errors)
        if outputs:
            job.output_file_id = self._store(_jsonl(outputs), "batch_output", "output.jsonl")["id"]
        if errors:
            job.error_file_id = self._store(_jsonl(errors), "batch_output", "errors.jsonl")["id"]

    def view(self, job: BatchJob) -> dict[str, Any]:
        done = job.completed + job.failed if job.status in TERMINAL else 0
        return {"id": job.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": None,
                "metadata": job.metadata,
                "input_file_id": job.input_file_id, "completion_window": "24h", "status": job.status,
                "output_file_id": job.output_file_id, "error_file_id": job.error_file_id,
                "created_at": job.created_at, "request_counts": {"total": len(job.lines), "completed": job.completed,
                                                                 "failed": job.failed if done else 0}}

    def message_batch(self, job: BatchJob, base: str) -> dict[str, Any]:
        """A job as Anthropic's MessageBatch object."""
        created = datetime.fromtimestamp(job.created_at, tz=timezone.utc)
        ended = job.status in TERMINAL
        outcomes = [r["result"]["type"] for r in self.message_results(job)] if ended else []
        counts = {"processing": 0 if ended else len(job.lines), "succeeded": outcomes.count("succeeded"),
                  "errored": outcomes.count("errored"), "canceled": outcomes.count("canceled"),
                  "expired": outcomes.count("expired")}
        return {"id": job.id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
                "request_counts": counts, "created_at": created.isoformat().replace("+00:00", "Z"),
                "expires_at": (created + timedelta(hours=24)).isoformat().replace("+00:00", "Z"),
                "ended_at": created.isoformat().replace("+00:00", "Z") if ended else None, "archived_at": None,
                "cancel_initiated_at": None,
                "results_url": f"{base}/v1/messages/batches/{job.id}/results" if ended else None}

    def message_listing(self, base: str) -> dict[str, Any]:
        jobs = sorted((j for j in self.jobs.values() if j.anthropic), key=lambda j: j.id, reverse=True)
        data = [self.message_batch(job, base) for job in jobs]
        return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}

    def message_results(self, job: BatchJob) -> list[dict[str, Any]]:
        """The ended job's results, one {custom_id, result} per request, in Anthropic's shapes."""
        files = self.files
        rows = []
        for file_id in (job.output_file_id, job.error_file_id):
            for line in (files.get(file_id or "") or b"").decode().splitlines():
                row = json.loads(line)
                response = row.get("response")
                if response is None:
                    kind = "canceled" if job.status == "cancelled" else "expired"
                    rows.append({"custom_id": row["custom_id"], "result": {"type": kind}})
                elif response["status_code"] == 200:
                    rows.append({"custom_id": row["custom_id"], "result": {"type": "succeeded",
                                                                           "message": _message(response["body"])}})
                else:
                    error = (response.get("body") or {}).get("error") or {}
                    kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(response["status_code"], "api_error")
                    rows.append({"custom_id": row["custom_id"], "result": {"type": "errored", "error": {
                        "type": "error", "error": {"type": kind, "message": error.get("message", "")}}}})
        return rows


def _chat_body(params: dict[str, Any]) -> dict[str, Any]:
    """Message Batches params as the chat request the script reads: the system message first again."""
    system = params.get("system")
    messages = ([{"role": "system", "content": system}] if system else []) + list(params.get("messages") or [])
    body = {"model": params.get("model"), "messages": messages, "max_tokens": params.get("max_tokens")}
    body.update({k: params[k] for k in ("temperature", "top_p") if k in params})
    return body


def _message(completion: dict[str, Any]) -> dict[str, Any]:
    choice = completion["choices"][0]
    usage = completion.get("usage") or {}
    return {"id": completion.get("id", "msg"), "type": "message", "role": "assistant", "model": completion.get("model"),
            "content": [{"type": "text", "text": choice["message"].get("content") or ""}],
            "stop_reason": {"length": "max_tokens"}.get(choice.get("finish_reason"), "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0)}}


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()
