"""A scripted, OpenAI-compatible chat-completions server on loopback.

Used as the test double for the teacher API: the real HTTP client stack (litellm /
openai / httpx) talks to it over TCP, while a *script* decides, per request and per
attempt, whether to answer normally (:class:`Reply`) or misbehave (:class:`Fault`); see scripts.py.

Standard library only.

Example::

    with FakeTeacherServer(scripted([Fault(kind="status", status=500), Reply("ok")])) as srv:
        ...  # point the client at srv.url ("http://127.0.0.1:PORT/v1")
        assert srv.attempts_for(request_key(body)) == 2
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import struct
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from .batches import BatchPlan, BatchService
from .scripts import (FAULT_KINDS, Attempt, Fault, Reply, Script, _messages_text, echo_script, http_date, request_key,
                      scripted)

__all__ = [
    "Attempt",
    "FAULT_KINDS",
    "FakeTeacherServer",
    "Fault",
    "Reply",
    "Script",
    "echo_script",
    "http_date",
    "request_key",
    "scripted",
]

def _split_content(content: str, pieces: int = 3) -> list[str]:
    if not content:
        return []
    size = max(1, math.ceil(len(content) / pieces))
    return [content[i : i + size] for i in range(0, len(content), size)]


# --------------------------------------------------------------------------- server


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # never join handler threads on server_close()
    allow_reuse_address = True
    request_queue_size = 1024  # benchmarks open many concurrent connections

    fake: "FakeTeacherServer"

    def handle_error(self, request, client_address) -> None:  # pragma: no cover - noise control
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ValueError)) or self.fake._stopping.is_set():
            return  # client went away, connection aborted on purpose, or shutting down
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeTeacher/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _HTTPServer

    # -- plumbing -------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.fake._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json", headers)

    def _send_error_json(
        self,
        status: int,
        message: str,
        err_type: str,
        code: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._send_json(
            status,
            {"error": {"message": message, "type": err_type, "param": None, "code": code}},
            headers,
        )

    # -- routing --------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        batches = self.server.fake.batches
        if path.startswith("/v1/messages/batches"):
            self._message_batches_get(path, batches)
        elif path.startswith("/v1/files/") and path.endswith("/content"):
            data = batches.content(path.split("/")[3])
            if data is None:
                self._send_error_json(404, "no such file", "invalid_request_error", "not_found")
            else:
                self._send(200, data, "application/octet-stream")
        elif path == "/v1/batches":
            self._send_json(200, batches.listing())
        elif path.startswith("/v1/batches/"):
            job = batches.retrieve(path.split("/")[3])
            if job is None:
                self._send_error_json(404, "no such batch", "invalid_request_error", "not_found")
            else:
                self._send_json(200, job)
        elif path in ("/v1/models", "/models"):
            fake = self.server.fake
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [{"id": fake.model_name, "object": "model", "created": 0, "owned_by": "synth-fake"}],
                },
            )
        else:
            self._send_error_json(404, f"no route for GET {path}", "invalid_request_error", "not_found")

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _message_batches_get(self, path: str, batches: Any) -> None:
        """Anthropic's Message Batches: the listing, one job (moving it on), and an ended job's results."""
        if path == "/v1/messages/batches":
            self._send_json(200, batches.message_listing(self._base()))
            return
        parts = path.split("/")
        job = batches.jobs.get(parts[4])
        if job is None or not job.anthropic:
            self._send_error_json(404, "no such message batch", "not_found_error", "not_found")
        elif len(parts) > 5 and parts[5] == "results":
            rows = batches.message_results(job)
            self._send(200, "".join(json.dumps(r) + "\n" for r in rows).encode(), "application/binary")
        else:
            batches.retrieve(job.id)
            self._send_json(200, batches.message_batch(job, self._base()))

    def do_POST(self) -> None:
        raw = self._read_body()
        path = self.path.split("?", 1)[0].rstrip("/")
        batches = self.server.fake.batches
        if path == "/v1/files":
            self._send_json(200, batches.upload(raw, self.headers.get("Content-Type", "")))
            return
        if path.startswith("/v1/messages/batches"):
            if path == "/v1/messages/batches":
                job = batches.create_messages(json.loads(raw or b"{}"))
            else:
                job = batches.jobs.get(path.split("/")[4])
                job = job if job is not None and batches.cancel(job.id) else None
            if job is None:
                self._send_error_json(404, "no such message batch", "invalid_request_error", "not_found")
            else:
                self._send_json(200, batches.message_batch(job, self._base()))
            return
        if path in ("/v1/batches",) or (path.startswith("/v1/batches/") and path.endswith("/cancel")):
            job = batches.create(json.loads(raw or b"{}")) if path == "/v1/batches" else batches.cancel(path.split("/")[3])
            if job is None:
                self._send_error_json(404, "no such file or batch", "invalid_request_error", "not_found")
            else:
                self._send_json(200, job)
            return
        if path not in ("/v1/chat/completions", "/chat/completions", "/v1/completions", "/completions"):
            self._send_error_json(404, f"no route for POST {path}", "invalid_request_error", "not_found")
            return
        self.server.fake._handle_completion(self, raw)


class FakeTeacherServer:
    """Scripted OpenAI-compatible chat-completions server on 127.0.0.1.

    ``script(body, attempt_no)`` decides what each attempt gets. ``attempt_no`` counts
    every chat-completions request seen for the same :func:`request_key` (starting at 1),
    including ones refused by the ``rpm`` or ``tpm`` limiter (those never reach the script).
    A request's tokens, for ``tpm``, are its prompt (characters // 4 + 1) plus its ``max_tokens``,
    as a provider counts them when the request arrives.
    """

    def __init__(self, script: Script, *, model_name: str = "fake-teacher", rpm: int | None = None,
                 tpm: int | None = None, port: int = 0, max_inflight: int | None = None,
                 batch_plan: Callable[[int], BatchPlan] | None = None):
        for name, limit in (("rpm", rpm), ("tpm", tpm)):
            if limit is not None and limit < 1:
                raise ValueError(f"{name} must be >= 1 or None")
        self.script = script
        self.model_name = model_name
        self.requested_port = port          # 0: any free port; a fixed one lets a stopped server come back
        # A server's own capacity: at most this many requests are worked on at once, the rest wait (as vLLM queues)
        self.max_inflight = max_inflight
        self._capacity = threading.BoundedSemaphore(max_inflight) if max_inflight else None
        self.batches = BatchService(self, batch_plan)     # /v1/files and /v1/batches
        self.rpm = rpm
        self.tpm = tpm
        self._lock = threading.Lock()
        self._attempts: list[Attempt] = []
        self._counts: dict[str, int] = {}
        self._window: deque[float] = deque()
        self._token_window: deque[tuple[float, int]] = deque()
        self._conns: set[socket.socket] = set()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> "FakeTeacherServer":
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        httpd = _HTTPServer(("127.0.0.1", self.requested_port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-teacher-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; aborts in-flight "silence"/"drip"/delayed handlers promptly."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # wakes every handler waiting on a delay/hold/interval
        httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:  # unblock handlers idling on keep-alive reads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=2)
        deadline = time.monotonic() + 1.0  # give handler threads a moment to unwind
        while time.monotonic() < deadline:
            with self._lock:
                if not self._conns:
                    break
            time.sleep(0.01)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> "FakeTeacherServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- introspection --------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT/v1`` (use as api_base)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def attempts(self) -> list[Attempt]:
        """Snapshot (copy) of the attempt log, in arrival order."""
        with self._lock:
            return list(self._attempts)

    def attempts_for(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def reset(self) -> None:
        """Forget logged attempts, per-key counters and the rate windows."""
        with self._lock:
            self._attempts.clear()
            self._counts.clear()
            self._window.clear()
            self._token_window.clear()

    # -- internals ------------------------------------------------------------

    def _register(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; returns False if the server is stopping."""
        if seconds > 0:
            return not self._stopping.wait(seconds)
        return not self._stopping.is_set()

    def _log(self, key: str, attempt_no: int, body: dict, outcome: str, at: float,
             reply: Reply | None = None) -> None:
        finish, usage = (reply.finish_reason, self._usage(body, reply)) if reply is not None else (None, None)
        with self._lock:
            self._attempts.append(Attempt(key, attempt_no, body, outcome, at, finish, usage))

    def _rate_limited(self, body: dict, at: float) -> tuple[str, int, dict[str, str]] | None:
        """(window, seconds to wait, headers) when the rpm or tpm window is full, else None; call under the lock.
        A request is entered in both windows only when both admit it."""
        while self._window and self._window[0] <= at - 60.0:
            self._window.popleft()
        while self._token_window and self._token_window[0][0] <= at - 60.0:
            self._token_window.popleft()
        if self.rpm is not None and len(self._window) >= self.rpm:
            wait = max(1, math.ceil(self._window[0] + 60.0 - at))
            return "requests", wait, {"x-ratelimit-limit-requests": str(self.rpm)}
        tokens = len(_messages_text(body)) // 4 + 1 + int(body.get("max_tokens") or 0)
        if self.tpm is not None:
            left = sum(n for _, n in self._token_window)
            if left + tokens > self.tpm:
                wait = 60                              # a request larger than the limit never fits
                for when, n in self._token_window:     # the wait until enough tokens have left the window
                    left -= n
                    if left + tokens <= self.tpm:
                        wait = max(1, math.ceil(when + 60.0 - at))
                        break
                return "tokens", wait, {"x-ratelimit-limit-tokens": str(self.tpm)}
            self._token_window.append((at, tokens))
        if self.rpm is not None:
            self._window.append(at)
        return None

    def batch_response(self, body: dict) -> tuple[int, dict]:
        """One request line of a batch job through the script, logged as an online attempt would be:
        (200, a chat completion) for a Reply, (status, an error body) for a Fault."""
        key = request_key(body)
        with self._lock:
            attempt_no = self._counts.get(key, 0) + 1
            self._counts[key] = attempt_no
        at = time.monotonic()
        try:
            action = self.script(body, attempt_no)
        except Exception as e:  # a script bug is a failed line the test can see
            self._log(key, attempt_no, body, "script_error", at)
            return 500, {"error": {"message": f"script error: {e!r}", "type": "server_error"}}
        if isinstance(action, Reply):
            self._log(key, attempt_no, body, "reply", at, action)
            return 200, json.loads(self._completion_bytes(body, action))
        self._log(key, attempt_no, body, action.kind, at)
        status = action.status if action.kind in ("status", "html") else 500
        return status, {"error": {"message": action.message, "type": action.error_type, "code": action.error_code}}

    def _handle_completion(self, h: _Handler, raw: bytes) -> None:
        at = time.monotonic()
        try:
            body = json.loads(raw.decode("utf-8") or "null")
            if not isinstance(body, dict):
                raise ValueError("request body must be a JSON object")
        except (ValueError, UnicodeDecodeError) as e:
            self._log("", 0, {}, "bad_request", at)
            h._send_error_json(400, f"invalid JSON body: {e}", "invalid_request_error", None)
            return

        key = request_key(body)
        with self._lock:
            attempt_no = self._counts.get(key, 0) + 1
            self._counts[key] = attempt_no
            limited = self._rate_limited(body, at)
            if limited is not None:
                outcome = "rpm_limited" if limited[0] == "requests" else "tpm_limited"
                self._attempts.append(Attempt(key, attempt_no, body, outcome, at))
        if limited is not None:
            window, retry_after, headers = limited
            limit = self.rpm if window == "requests" else self.tpm
            h._send_error_json(
                429,
                f"Rate limit reached for {window}: limit {limit} per min. Please try again in {retry_after}s.",
                window,
                "rate_limit_exceeded",
                {"Retry-After": str(retry_after), **headers},
            )
            return

        try:
            action = self.script(body, attempt_no)
            if not isinstance(action, (Reply, Fault)):
                raise TypeError(f"script returned {type(action).__name__}, expected Reply or Fault")
        except Exception as e:  # surface script bugs as a 500 the test can see
            self._log(key, attempt_no, body, "script_error", at)
            h._send_error_json(500, f"script error: {e!r}", "server_error", "script_error")
            return

        if isinstance(action, Reply):
            self._log(key, attempt_no, body, "reply", at, action)
        else:
            self._log(key, attempt_no, body, action.kind, at)
        if self._capacity is not None:
            self._capacity.acquire()
        try:
            if not self._sleep(action.delay):
                h.close_connection = True
                return
            if isinstance(action, Reply):
                self._serve_reply(h, body, action)
            else:
                self._serve_fault(h, body, action)
        finally:
            if self._capacity is not None:
                self._capacity.release()

    # -- bodies ---------------------------------------------------------------

    def _new_id(self) -> str:
        return f"chatcmpl-fake{next(self._ids):08x}"

    def _usage(self, body: dict, reply: Reply) -> dict:
        pt = reply.prompt_tokens if reply.prompt_tokens is not None else len(_messages_text(body)) // 4 + 1
        ct = reply.completion_tokens if reply.completion_tokens is not None else len(reply.content) // 4 + 1
        return {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}

    def _completion_bytes(self, body: dict, reply: Reply) -> bytes:
        if "prompt" in body and "messages" not in body:          # a raw completion (/v1/completions)
            return json.dumps({
                "id": self._new_id(), "object": "text_completion", "created": int(time.time()),
                "model": body.get("model") or self.model_name,
                "choices": [{"index": 0, "text": reply.content, "logprobs": None, "finish_reason": reply.finish_reason}],
                "usage": self._usage(body, reply),
            }).encode("utf-8")
        obj = {
            "id": self._new_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": self._usage(body, reply),
        }
        return json.dumps(obj).encode("utf-8")

    def _stream_bytes(self, body: dict, reply: Reply) -> bytes:
        cid, created = self._new_id(), int(time.time())
        model = body.get("model") or self.model_name

        def chunk(delta: dict, finish: str | None) -> dict:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        chunks = [chunk({"role": "assistant", "content": ""}, None)]
        chunks += [chunk({"content": piece}, None) for piece in _split_content(reply.content)]
        if reply.finish_reason is not None:
            chunks.append(chunk({}, reply.finish_reason))
        opts = body.get("stream_options")
        if isinstance(opts, dict) and opts.get("include_usage"):
            chunks.append(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": self._usage(body, reply),
                }
            )
        out = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return out.encode("utf-8")

    def _valid_body(self, body: dict, reply: Reply) -> tuple[bytes, str]:
        if body.get("stream"):
            return self._stream_bytes(body, reply), "text/event-stream"
        return self._completion_bytes(body, reply), "application/json"

    # -- serving --------------------------------------------------------------

    def _serve_reply(self, h: _Handler, body: dict, reply: Reply) -> None:
        data, ctype = self._valid_body(body, reply)
        extra = {"Cache-Control": "no-cache"} if ctype == "text/event-stream" else None
        h._send(200, data, ctype, extra)

    def _serve_fault(self, h: _Handler, body: dict, f: Fault) -> None:
        kind = f.kind
        if kind == "status":
            h._send_error_json(f.status, f.message, f.error_type, f.error_code, f.headers)
        elif kind == "html":
            reason = h.responses.get(f.status, ("Error",))[0]
            page = (
                f"<html>\r\n<head><title>{f.status} {reason}</title></head>\r\n<body>\r\n"
                f"<center><h1>{f.status} {reason}</h1></center>\r\n<hr><center>{f.message}</center>\r\n"
                "</body>\r\n</html>\r\n"
            )
            h._send(f.status, page.encode("utf-8"), "text/html; charset=utf-8", f.headers)
        elif kind == "malformed":
            if body.get("stream"):
                data = b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "trunc\n\ndata: [DONE]\n\n'
                h._send(200, data, "text/event-stream", f.headers)
            else:
                h._send(200, b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"mess', "application/json", f.headers)
        elif kind == "reset":
            self._abort(h)
        elif kind == "silence":
            data, ctype = self._valid_body(body, Reply(content=f.message))
            self._send_head(h, 200, ctype, len(data), f.headers)
            self._sleep(f.hold)
            h.close_connection = True  # never send the promised body
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif kind == "drip":
            data, ctype = self._valid_body(body, Reply(content=f.message))
            self._send_head(h, 200, ctype, len(data), f.headers)
            for i in range(len(data)):
                if not self._sleep(f.interval):
                    h.close_connection = True
                    return
                try:
                    h.wfile.write(data[i : i + 1])
                except OSError:
                    h.close_connection = True
                    return
        else:  # pragma: no cover - guarded by Fault.__post_init__
            h._send_error_json(500, f"unknown fault kind {kind!r}", "server_error", None)

    @staticmethod
    def _send_head(h: _Handler, status: int, ctype: str, length: int, headers: dict[str, str]) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(length))
        for k, v in headers.items():
            h.send_header(k, str(v))
        h.end_headers()

    @staticmethod
    def _abort(h: _Handler) -> None:
        """Close the TCP connection with RST (SO_LINGER on, timeout 0)."""
        h.close_connection = True
        conn = h.connection
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile holds a reference to the socket, so conn.close() alone would defer the
        # real close; detach the fd and close it ourselves so the RST goes out now.
        try:
            fd = conn.detach()
        except OSError:
            return
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
