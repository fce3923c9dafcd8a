"""The providers' batch APIs behind one small interface, for `BatchTeacher`: OpenAI's Files and Batches API through
litellm (OpenAI, and any OpenAI-compatible server with /v1/files and /v1/batches), and Anthropic's Message Batches
through the official SDK (litellm cannot create those).

Each API speaks in OpenAI's terms to the rest of synth: a job's state is one of validating, in_progress, finalizing,
completed, failed, expired or cancelled, and each answer is (HTTP status, a chat-completion body), so the cache,
the costs and the retries never need to know which provider ran the job.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigError, TransientTeacherError

Answers = dict[str, tuple[int, Any]]        # custom id -> (HTTP status, chat-completion body or error body)
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class Job:
    id: str
    status: str                    # in OpenAI's vocabulary, whichever provider runs it
    completed: int = 0
    failed: int = 0
    total: int = 0
    raw: Any = None


def batch_api(model: str, api_base: str | None, api_key: str | None) -> "OpenAIBatches | AnthropicBatches":
    """The batch API that serves `model`: Anthropic's for anthropic/... and claude-... models, else OpenAI's."""
    if model.startswith("anthropic/") or model.startswith("claude-"):
        return AnthropicBatches(api_base, api_key)
    return OpenAIBatches(api_base, api_key)


def _failed(name: str, exc: Exception) -> TransientTeacherError:
    """A batch endpoint that fails is a transient failure of every request it carries."""
    return TransientTeacherError("batch_api", f"{name} failed: {type(exc).__name__}: {exc}")


class OpenAIBatches:
    """Upload a JSONL file of requests, create a job on it, follow it, read its output and error files."""

    def __init__(self, api_base: str | None, api_key: str | None):
        self.api_base, self.api_key = api_base, api_key

    async def upload(self, lines: list[tuple[str, dict[str, Any]]]) -> str:
        data = "".join(json.dumps({"custom_id": key, "method": "POST", "url": "/v1/chat/completions",
                                   "body": _openai_body(body)}) + "\n" for key, body in lines).encode()
        upload = await self._call("acreate_file", file=("synth-batch.jsonl", io.BytesIO(data)), purpose="batch")
        return upload.id

    async def create(self, upload: str | None, lines: list[tuple[str, dict[str, Any]]], tag: str, window: str) -> str:
        job = await self._call("acreate_batch", completion_window=window, endpoint="/v1/chat/completions",
                               input_file_id=upload, metadata={"synth_job": tag})
        return job.id

    async def retrieve(self, job_id: str) -> Job:
        job = await self._call("aretrieve_batch", batch_id=job_id)
        counts = job.request_counts
        return Job(job.id, job.status, getattr(counts, "completed", 0) or 0, getattr(counts, "failed", 0) or 0,
                   getattr(counts, "total", 0) or 0, job)

    async def results(self, job: Job) -> Answers:
        answers: Answers = {}
        for file_id in (job.raw.output_file_id, job.raw.error_file_id):
            if not file_id:
                continue
            content = await self._call("afile_content", file_id=file_id)
            for line in content.content.decode("utf-8", "replace").splitlines():
                if line.strip():
                    row = json.loads(line)
                    response = row.get("response") or {}
                    answers[row["custom_id"]] = (int(response.get("status_code") or 0), response.get("body"))
        return answers

    async def find_tagged(self, tag: str, since: float, count: int, known: set[str]) -> str | None:
        """The job a killed session created for `tag`: OpenAI keeps the tag as the job's metadata."""
        listing = await self._call("alist_batches", limit=100)
        for job in getattr(listing, "data", None) or []:
            if (getattr(job, "metadata", None) or {}).get("synth_job") == tag:
                return job.id
        return None

    async def _call(self, name: str, **kwargs: Any) -> Any:
        import litellm

        try:
            return await getattr(litellm, name)(**kwargs, custom_llm_provider="openai", api_base=self.api_base,
                                                api_key=self.api_key)
        except Exception as exc:
            raise _failed(name, exc) from None

    async def aclose(self) -> None:
        import litellm
        from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients

        await close_litellm_async_clients()     # the Files and Batches clients litellm keeps belong to this loop
        litellm.in_memory_llm_clients_cache.flush_cache()


class AnthropicBatches:
    """Message Batches: the requests go inline with the job (no file), and results come back as one JSONL stream."""

    STATES = {"in_progress": "in_progress", "canceling": "in_progress", "ended": "completed"}
    FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "refusal": "content_filter",
              "tool_use": "tool_calls"}

    def __init__(self, api_base: str | None, api_key: str | None):
        try:
            import anthropic
        except ImportError:
            raise ConfigError("Anthropic batches need the anthropic package: pip install 'synth[anthropic]'") from None

        base = api_base.rstrip("/").removesuffix("/v1") if api_base else None
        self.client = anthropic.AsyncAnthropic(api_key=api_key or None, base_url=base, max_retries=0)

    async def upload(self, lines: list[tuple[str, dict[str, Any]]]) -> None:
        return None

    async def create(self, upload: str | None, lines: list[tuple[str, dict[str, Any]]], tag: str, window: str) -> str:
        requests = [{"custom_id": key, "params": anthropic_params(body)} for key, body in lines]
        job = await self._call("create", self.client.messages.batches.create(requests=requests))
        return job.id

    async def retrieve(self, job_id: str) -> Job:
        job = await self._call("retrieve", self.client.messages.batches.retrieve(job_id))
        counts = job.request_counts
        failed = counts.errored + counts.canceled + counts.expired
        total = failed + counts.succeeded + counts.processing
        return Job(job.id, self.STATES.get(job.processing_status, job.processing_status), counts.succeeded, failed,
                   total, job)

    async def results(self, job: Job) -> Answers:
        answers: Answers = {}
        try:
            async for entry in await self.client.messages.batches.results(job.id):
                answers[entry.custom_id] = self._answer(entry.result)
        except Exception as exc:
            raise _failed("results", exc) from None
        return answers

    def _answer(self, result: Any) -> tuple[int, Any]:
        if result.type == "succeeded":
            message = result.message
            text = "".join(block.text for block in message.content if getattr(block, "type", "") == "text")
            return 200, {"id": message.id, "model": message.model,
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": self.FINISH.get(message.stop_reason or "", "stop")}],
                         "usage": {"prompt_tokens": message.usage.input_tokens,
                                   "completion_tokens": message.usage.output_tokens}}
        if result.type == "errored":
            error = getattr(result.error, "error", None)
            kind = getattr(error, "type", "api_error")
            status = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                      "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
                      "overloaded_error": 529}.get(kind, 500)
            return status, {"error": {"type": kind, "message": getattr(error, "message", "")}}
        return 0, None                  # canceled or expired: sent again in the next job, as OpenAI's expired ones

    async def find_tagged(self, tag: str, since: float, count: int, known: set[str]) -> str | None:
        """Message Batches carry no metadata: the job a killed session created is the one made after it wrote the
        job down, with exactly its number of requests, that no other entry of the ledger claims."""
        try:
            page = await self.client.messages.batches.list(limit=100)
            jobs = list(page.data)
        except Exception as exc:
            raise _failed("list", exc) from None
        start = datetime.fromtimestamp(since - 5, tz=timezone.utc)
        for job in sorted(jobs, key=lambda j: j.created_at):
            counts = job.request_counts
            total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
            if job.created_at >= start and total == count and job.id not in known:
                return job.id
        return None

    async def _call(self, name: str, call: Any) -> Any:
        try:
            return await call
        except Exception as exc:
            raise _failed(name, exc) from None

    async def aclose(self) -> None:
        await self.client.close()


def _openai_body(request: dict[str, Any]) -> dict[str, Any]:
    """The request as a batch line's body: what the API takes, without litellm's own fields."""
    body = {k: v for k, v in request.items() if k != "api_base"}
    body["model"] = body["model"].split("/", 1)[1] if body["model"].startswith("openai/") else body["model"]
    return body


def anthropic_params(request: dict[str, Any]) -> dict[str, Any]:
    """A chat request as Message Batches' params: the system message apart, the provider prefix off the model, and
    top_p only where it narrows anything (newer Claude models refuse both temperature and top_p)."""
    system = "\n\n".join(m["content"] for m in request["messages"] if m["role"] == "system")
    params: dict[str, Any] = {"model": request["model"].removeprefix("anthropic/"),
                              "max_tokens": request.get("max_tokens") or 1024,
                              "messages": [m for m in request["messages"] if m["role"] != "system"]}
    if system:
        params["system"] = system
    if request.get("temperature") is not None:
        params["temperature"] = request["temperature"]
    if request.get("top_p") not in (None, 1, 1.0):
        params["top_p"] = request["top_p"]
    if request.get("stop"):
        params["stop_sequences"] = list(request["stop"]) if isinstance(request["stop"], list) else [request["stop"]]
    return params
