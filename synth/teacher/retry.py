"""Which teacher failures are worth a retry, and how long the server asked us to wait."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from typing import Any

from ..errors import FatalTeacherError, TeacherError, TransientTeacherError
from .secrets import redact

RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529}
FATAL_STATUSES = {401, 403, 404}


def _nothing_listening(exc: BaseException) -> str | None:
    """The refused connection or unknown host under the SDKs' wrappers (litellm reports both as a 500), if any."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, (ConnectionRefusedError, socket.gaierror)):
            return "connection refused" if isinstance(cause, ConnectionRefusedError) else f"unknown host: {cause.strerror}"
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


def classify(exc: BaseException) -> TeacherError:
    """Map an exception from litellm (or the deadline) to a transient, per-request or fatal TeacherError."""
    if isinstance(exc, TeacherError):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return TransientTeacherError("deadline", "request passed its deadline")
    if (refusal := _nothing_listening(exc)) is not None:
        return TransientTeacherError("unreachable", f"cannot connect ({refusal})")
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    message = _short(redact(str(getattr(exc, "message", "") or exc)))
    if "insufficient_quota" in message or "exceeded your current quota" in message:
        return FatalTeacherError("insufficient_quota", "the teacher's account has no quota left; add credit or change --teacher")
    if status == 401 or name == "AuthenticationError":
        return FatalTeacherError("auth", "the teacher rejected the API key (401); check the key variable for this provider")
    if status in FATAL_STATUSES or name in ("NotFoundError", "PermissionDeniedError"):
        return FatalTeacherError(f"http_{status}", f"the teacher answered {status}: {message}")
    if name == "Timeout":
        return TransientTeacherError("timeout", message)
    if status in RETRY_STATUSES or name in ("RateLimitError", "ServiceUnavailableError", "InternalServerError", "APIConnectionError", "BadGatewayError"):
        return TransientTeacherError(f"http_{status}" if status else "connection", message)
    if isinstance(status, int) and 400 <= status < 500:
        return TeacherError(f"http_{status}", message)
    # No status at all: a dropped connection, a malformed body, a stream that broke.
    return TransientTeacherError("connection", f"{name}: {message}")


def retry_after_seconds(exc: BaseException, now: float | None = None) -> float | None:
    """Retry-After from an error response: `retry-after-ms`, seconds, or an HTTP date."""
    headers = _headers(exc)
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def _headers(exc: BaseException) -> Any:
    for attr in ("litellm_response_headers", "headers"):
        headers = getattr(exc, attr, None)
        if headers:
            return headers
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
