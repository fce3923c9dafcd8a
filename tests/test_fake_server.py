"""Tests for the scripted fake teacher server (stdlib HTTP clients only, no litellm)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from synth.testing.server import (  # noqa: E402
    FakeTeacherServer,
    Fault,
    Reply,
    echo_script,
    request_key,
    scripted,
)

BODY = {"model": "fake-teacher", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]}


def post(srv: FakeTeacherServer, body: dict, timeout: float = 5.0):
    """POST via urllib; returns (status, headers, parsed-or-raw body)."""
    req = urllib.request.Request(
        srv.url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-fake"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def conn_post(conn: http.client.HTTPConnection, body: dict, path: str = "/v1/chat/completions"):
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, resp.headers, resp.read()


def test_normal_reply_shape_and_usage():
    with FakeTeacherServer(scripted([Reply("hello world", completion_tokens=7)])) as srv:
        status, headers, raw = post(srv, BODY)
        assert status == 200
        assert headers["Content-Type"] == "application/json"
        assert int(headers["Content-Length"]) == len(raw)
        data = json.loads(raw)
        assert data["object"] == "chat.completion"
        assert data["id"].startswith("chatcmpl-")
        assert isinstance(data["created"], int)
        assert data["model"] == "fake-teacher"
        (choice,) = data["choices"]
        assert choice["index"] == 0
        assert choice["message"] == {"role": "assistant", "content": "hello world"}
        assert choice["finish_reason"] == "stop"
        prompt_len = len("be brief") + len("hello there")
        assert data["usage"] == {
            "prompt_tokens": prompt_len // 4 + 1,
            "completion_tokens": 7,
            "total_tokens": prompt_len // 4 + 1 + 7,
        }
        assert [a.outcome for a in srv.attempts] == ["reply"]
        assert srv.attempts[0].body == BODY


def test_model_echo_finish_reason_none_and_keepalive():
    with FakeTeacherServer(scripted([Reply("abcdefgh", finish_reason=None, prompt_tokens=3)])) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        try:
            body = dict(BODY, model="other-model")
            for _ in range(2):  # same connection twice: keep-alive works
                status, _, raw = conn_post(conn, body)
                assert status == 200
                data = json.loads(raw)
                assert data["model"] == "other-model"
                assert data["choices"][0]["finish_reason"] is None
                assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
        finally:
            conn.close()
        assert srv.attempts_for(request_key(body)) == 2


def test_models_endpoint():
    with FakeTeacherServer(echo_script, model_name="teacher-x") as srv:
        with urllib.request.urlopen(srv.url + "/models", timeout=5) as resp:
            data = json.loads(resp.read())
        assert data == {"object": "list", "data": [{"id": "teacher-x", "object": "model", "created": 0, "owned_by": "synth-fake"}]}
        assert srv.attempts == []


def test_echo_script_is_deterministic():
    with FakeTeacherServer(echo_script) as srv:
        outs = [json.loads(post(srv, BODY)[2])["choices"][0]["message"]["content"] for _ in range(2)]
    assert outs == ["echo: hello there", "echo: hello there"]


def test_attempts_counted_per_key_across_retries():
    script = scripted([Fault(kind="status", status=500, error_code="boom"), Reply("ok")])
    other = dict(BODY, messages=[{"role": "user", "content": "different"}])
    with FakeTeacherServer(script) as srv:
        status, headers, raw = post(srv, BODY)
        assert status == 500
        err = json.loads(raw)["error"]
        assert err["type"] == "server_error" and err["code"] == "boom" and err["message"] == "scripted fault"
        status, _, raw = post(srv, BODY)
        assert status == 200
        assert json.loads(raw)["choices"][0]["message"]["content"] == "ok"
        status, _, _ = post(srv, BODY)  # last item repeats
        assert status == 200
        assert post(srv, other)[0] == 500  # a different request starts at attempt 1

        key = request_key(BODY)
        # key ignores non-identity fields such as temperature
        assert request_key(dict(BODY, temperature=0.3)) == key
        assert srv.attempts_for(key) == 3
        assert srv.attempts_for(request_key(other)) == 1
        assert srv.attempts_for("nope") == 0
        mine = [(a.attempt_no, a.outcome) for a in srv.attempts if a.key == key]
        assert mine == [(1, "status"), (2, "reply"), (3, "reply")]


def test_429_fault_carries_retry_after():
    fault = Fault(kind="status", status=429, headers={"Retry-After": "1", "retry-after-ms": "200"},
                  error_type="requests", error_code="rate_limit_exceeded", message="slow down")
    with FakeTeacherServer(scripted([fault])) as srv:
        status, headers, raw = post(srv, BODY)
    assert status == 429
    assert headers["Retry-After"] == "1"
    assert headers["retry-after-ms"] == "200"
    assert json.loads(raw) == {"error": {"message": "slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}


def test_html_and_malformed_faults():
    with FakeTeacherServer(scripted([Fault(kind="html", status=502), Fault(kind="malformed")])) as srv:
        status, headers, raw = post(srv, BODY)
        assert status == 502 and headers["Content-Type"].startswith("text/html") and b"<html>" in raw
        status, headers, raw = post(srv, BODY)
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
        assert [a.outcome for a in srv.attempts] == ["html", "malformed"]


def test_reset_fault_raises_connection_error():
    with FakeTeacherServer(scripted([Fault(kind="reset"), Reply("after reset")])) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        try:
            with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
                conn_post(conn, BODY)
        finally:
            conn.close()
        # the server is still healthy afterwards
        status, _, raw = post(srv, BODY)
        assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "after reset"
        assert [a.outcome for a in srv.attempts] == ["reset", "reply"]


def test_silence_times_out_client_and_stop_is_prompt():
    srv = FakeTeacherServer(scripted([Fault(kind="silence", hold=30.0)])).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=1.0)
        t0 = time.monotonic()
        conn.request("POST", "/v1/chat/completions", body=json.dumps(BODY), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()  # status line + headers do arrive
        assert resp.status == 200 and int(resp.headers["Content-Length"]) > 0
        with pytest.raises((socket.timeout, TimeoutError)):
            resp.read()
        assert time.monotonic() - t0 < 3
        conn.close()
        assert [a.outcome for a in srv.attempts] == ["silence"]
        # keep a second silent handler mid-flight while stopping
        c2 = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        payload = json.dumps(BODY).encode()
        c2.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        assert c2.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        t1 = time.monotonic()
        srv.stop()
        elapsed = time.monotonic() - t1
    assert elapsed < 2.0, elapsed
    c2.close()


def test_drip_delivers_valid_body_slowly():
    with FakeTeacherServer(scripted([Fault(kind="drip", interval=0.0005, message="x")])) as srv:
        status, _, raw = post(srv, BODY)
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "x"


def test_streaming_yields_chunks_ending_with_done():
    content = "The quick brown fox jumps over the lazy dog."
    with FakeTeacherServer(scripted([Reply(content, finish_reason="length")])) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        try:
            status, headers, raw = conn_post(conn, dict(BODY, stream=True, stream_options={"include_usage": True}))
        finally:
            conn.close()
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = [line[len("data: "):] for line in raw.decode().split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    choice_chunks = [c for c in chunks if c["choices"]]
    assert len(choice_chunks) >= 3
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in choice_chunks) == content
    assert choice_chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in choice_chunks[:-1])
    assert chunks[-1]["usage"]["completion_tokens"] == len(content) // 4 + 1


def test_streaming_without_finish_reason():
    with FakeTeacherServer(scripted([Reply("abc", finish_reason=None)])) as srv:
        _, _, raw = post(srv, dict(BODY, stream=True))
    events = [line[len("data: "):] for line in raw.decode().split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert all(json.loads(e)["choices"][0]["finish_reason"] is None for e in events[:-1])


def test_rpm_limit_returns_429_after_n_requests():
    with FakeTeacherServer(echo_script, rpm=3) as srv:
        for i in range(3):
            assert post(srv, dict(BODY, messages=[{"role": "user", "content": f"q{i}"}]))[0] == 200
        status, headers, raw = post(srv, BODY)
        assert status == 429
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert json.loads(raw)["error"]["code"] == "rate_limit_exceeded"
        assert [a.outcome for a in srv.attempts] == ["reply"] * 3 + ["rpm_limited"]
        assert srv.attempts_for(request_key(BODY)) == 1


def test_unknown_route_and_bad_json():
    with FakeTeacherServer(echo_script) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        try:
            assert conn_post(conn, BODY, path="/v1/nope")[0] == 404
            conn.request("POST", "/v1/chat/completions", body=b"{not json", headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 400 and "error" in json.loads(resp.read())
        finally:
            conn.close()


def test_script_exception_becomes_500():
    def bad(body, attempt):
        raise RuntimeError("oops")

    with FakeTeacherServer(bad) as srv:
        status, _, raw = post(srv, BODY)
    assert status == 500 and "oops" in json.loads(raw)["error"]["message"]
    assert srv.attempts[0].outcome == "script_error"


def test_tpm_limit_counts_prompt_and_max_tokens():
    small = dict(BODY, max_tokens=40)                      # (8 + 11) // 4 + 1 + 40 = 45 tokens
    with FakeTeacherServer(echo_script, tpm=100) as srv:
        assert post(srv, small)[0] == 200
        assert post(srv, dict(small, messages=[{"role": "user", "content": "another"}]))[0] == 200
        status, headers, raw = post(srv, small)
        assert status == 429
        assert 1 <= int(headers["Retry-After"]) <= 60 and headers["x-ratelimit-limit-tokens"] == "100"
        assert json.loads(raw)["error"]["type"] == "tokens"
        assert post(srv, dict(BODY, max_tokens=1))[0] == 200      # a small one still fits: 45 + 42 + 6 <= 100
        assert [a.outcome for a in srv.attempts] == ["reply", "reply", "tpm_limited", "reply"]


def test_rpm_and_tpm_together_count_a_refused_request_in_neither():
    with FakeTeacherServer(echo_script, rpm=2, tpm=60) as srv:
        assert post(srv, dict(BODY, max_tokens=80))[0] == 429          # too many tokens: not counted as a request
        assert post(srv, BODY)[0] == 200 and post(srv, BODY)[0] == 200
        assert post(srv, BODY)[0] == 429                               # now the request window is full
        assert [a.outcome for a in srv.attempts] == ["tpm_limited", "reply", "reply", "rpm_limited"]


def test_attempt_log_carries_finish_reason_and_usage():
    replies = [Reply("cut", finish_reason="length", completion_tokens=9), Reply("", finish_reason="content_filter"),
               Reply("done", completion_tokens=3)]
    with FakeTeacherServer(scripted([Fault(kind="status", status=503), *replies])) as srv:
        for _ in range(4):
            post(srv, BODY)
    logged = srv.attempts
    assert [(a.outcome, a.finish_reason) for a in logged] == [
        ("status", None), ("reply", "length"), ("reply", "content_filter"), ("reply", "stop")]
    assert [a.faulted for a in logged] == [True, True, True, False]
    assert logged[0].usage is None and logged[1].usage["completion_tokens"] == 9 and logged[3].usage["total_tokens"] > 3
