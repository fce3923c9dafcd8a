"""`--client openai`: chat requests sent straight to an OpenAI-compatible server's /chat/completions on synth's own
aiohttp sessions (pool.Connection), without litellm, the OpenAI SDK or httpx in the way.

litellm speaks to every provider, and it pays for that on every request: it builds the request through the SDK,
looks the model up in its price map several times and logs each call, about 9 ms of CPU per request on one core.
A fleet of self-hosted servers (vLLM, SGLang, llama.cpp, Ollama) speaks one wire format, so synth can send the JSON
itself for a fraction of that (bench/throughput.py --fleet measures both). Everything around the wire stays the
teacher layer's own: the cache, retries, breakers, limits and budget (client.py).
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import TransientTeacherError

PROVIDER_PREFIXES = ("openai/", "hosted_vllm/", "custom_openai/")   # litellm's names for an OpenAI-compatible server


class WireError(Exception):
    """An HTTP error reply, with what classify() and retry_after_seconds() read: the status, the message, the
    headers (Retry-After)."""

    def __init__(self, status_code: int, message: str, headers: Any):
        super().__init__(message)
        self.status_code, self.message, self.headers = status_code, message, headers


def served_name(model: str) -> str:
    """The model name the server knows: litellm's provider prefix taken off (openai/meta-llama/X -> meta-llama/X)."""
    for prefix in PROVIDER_PREFIXES:
        if model.startswith(prefix):
            return model[len(prefix):]
    return model


def openai_body(request: dict[str, Any], *, merge_extra: bool) -> dict[str, Any]:
    """A request as an OpenAI-compatible server takes it: litellm's api_base dropped, the provider prefix off the
    model. `extra_body` (the SDK's way to send a server's own fields, such as a grammar) is merged in for the wire;
    the SDK merges it itself, so for the SDK it stays."""
    body = {k: v for k, v in request.items() if k != "api_base" and not (merge_extra and k == "extra_body")}
    if merge_extra:
        body.update(request.get("extra_body") or {})
    body["model"] = served_name(body["model"])
    return body


async def chat(session: Any, url: str, key: str, request: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """POST one chat request on an aiohttp session; returns (reply JSON, response headers). An error status is a
    WireError; a reply that is not a JSON object with choices is a transient failure, as litellm would make it."""
    body = openai_body(request, merge_extra=True)
    async with session.post(url, data=json.dumps(body).encode(),
                            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as response:
        content = await response.read()
        status, headers = response.status, response.headers
    if status >= 400:
        raise WireError(status, _error_message(status, content), headers)
    try:
        reply = json.loads(content)
    except ValueError:
        raise TransientTeacherError("malformed_response", "teacher reply was not JSON") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("choices"), list) or not reply["choices"]:
        raise TransientTeacherError("malformed_response", "teacher reply had no choices")
    return reply, headers


def reply_parts(reply: dict[str, Any]) -> tuple[str, str | None, int, int]:
    """(text, finish_reason, prompt tokens, completion tokens) of a chat reply. A first choice without a
    finish_reason (None here) was cut short: the caller books its cost, then retries it, as on the litellm path."""
    choice = reply["choices"][0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise TransientTeacherError("malformed_response", "teacher reply had no message")
    usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else {}
    finish = choice.get("finish_reason")
    return (str(message.get("content") or ""), None if finish is None else str(finish), _count(usage.get("prompt_tokens")),
            _count(usage.get("completion_tokens")))


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _error_message(status: int, content: bytes) -> str:
    """The server's own error message where the body carries one ({"error": {"message": ...}}), else the body."""
    try:
        error = json.loads(content).get("error")
        if isinstance(error, dict) and error.get("message"):
            kinds = dict.fromkeys(str(k) for k in (error.get("type"), error.get("code")) if k)   # insufficient_quota
            return f"{' / '.join(kinds) or 'error'}: {error['message']}"
        if isinstance(error, str):
            return error
    except (ValueError, AttributeError):
        pass
    return content.decode("utf-8", "replace")[:300] or f"HTTP {status}"
