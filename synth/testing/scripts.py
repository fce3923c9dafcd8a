"""What a scripted teacher server serves: a script maps each request and attempt to a Reply (a normal completion) or
a Fault (an error or misbehaviour); each attempt is logged as an Attempt. Standard library only.

    script = scripted([Fault(kind="status", status=500), Reply("ok")])     # the first attempt fails, the second not
"""

from __future__ import annotations

import email.utils
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Union

FAULT_KINDS = frozenset({"status", "html", "malformed", "reset", "silence", "drip"})


@dataclass
class Reply:
    """A normal completion."""

    content: str
    finish_reason: str | None = "stop"  # None -> the field is null
    prompt_tokens: int | None = None  # None -> len(all message text)//4 + 1
    completion_tokens: int | None = None  # None -> len(content)//4 + 1
    delay: float = 0.0  # seconds to sleep before answering


@dataclass
class Fault:
    """An error or misbehaviour.

    kind:
      * ``"status"``    -- HTTP ``status`` with an OpenAI-style JSON error body.
      * ``"html"``      -- HTTP ``status`` with an HTML error page body.
      * ``"malformed"`` -- 200 with an invalid JSON body.
      * ``"reset"``     -- abort the TCP connection (SO_LINGER 0 -> RST) before any response.
      * ``"silence"``   -- status line + headers (with Content-Length), then nothing for
                           ``hold`` seconds, then the connection is closed.
      * ``"drip"``      -- a valid 200 completion body, one byte every ``interval`` seconds.
    """

    kind: str
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str = "server_error"
    error_code: str | None = None
    message: str = "scripted fault"
    hold: float = 30.0
    interval: float = 2.0
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")


Script = Callable[[dict, int], Union[Reply, Fault]]


@dataclass(frozen=True)
class Attempt:
    """One logged chat-completions attempt.

    outcome: "reply", a fault kind, "rpm_limited", "tpm_limited", "bad_request" or "script_error".
    at: time.monotonic() when the request arrived (after its body was read).
    finish_reason, usage: those of the reply served ("reply" only), so a test can tell a cut or filtered
    reply from a finished one and price what the server billed.
    """

    key: str
    attempt_no: int
    body: dict
    outcome: str
    at: float
    finish_reason: str | None = None
    usage: dict | None = None

    @property
    def faulted(self) -> bool:
        """Anything but a finished reply: an error, a broken connection, or a reply cut short or filtered."""
        return self.outcome != "reply" or self.finish_reason != "stop"


# --------------------------------------------------------------------------- helpers


def request_key(body: dict) -> str:
    """Identity of a request: sha256 of canonical JSON of its ``messages`` and ``model``."""
    canon = json.dumps(
        {"messages": body.get("messages"), "model": body.get("model")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content: [{"type": "text", "text": ...}, ...]
        parts = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def _messages_text(body: dict) -> str:
    if isinstance(body.get("prompt"), str):
        return body["prompt"]
    msgs = body.get("messages") or []
    if not isinstance(msgs, list):
        return ""
    return "".join(_content_text(m.get("content")) for m in msgs if isinstance(m, dict))


def _last_user_text(body: dict) -> str:
    msgs = body.get("messages") or []
    if isinstance(msgs, list):
        for m in reversed(msgs):
            if isinstance(m, dict) and m.get("role") == "user":
                return _content_text(m.get("content"))
    return ""


def echo_script(body: dict, attempt: int) -> Reply:
    """Deterministic reply derived from the last user message: ``"echo: <text>"``."""
    return Reply(content=f"echo: {_last_user_text(body)}")


def scripted(replies_by_attempt: list[Reply | Fault]) -> Script:
    """Serve the i-th item on attempt i (1-based) of each request; the last item repeats."""
    items = list(replies_by_attempt)
    if not items:
        raise ValueError("scripted() needs at least one Reply or Fault")

    def script(body: dict, attempt: int) -> Reply | Fault:
        return items[min(max(attempt, 1), len(items)) - 1]

    return script


def http_date(ts: float | None = None) -> str:
    """RFC 7231 date, e.g. for an HTTP-date Retry-After header value in a Fault."""
    return email.utils.formatdate(ts, usegmt=True)
