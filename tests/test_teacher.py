"""The teacher layer over litellm's real HTTP client, against the scripted server on loopback."""

import asyncio
import time

import pytest

from synth.budget import Budget
from synth.cache import RequestCache
from synth.errors import BudgetExceeded, FatalTeacherError, MissingKeyError, TeacherError, TransientTeacherError
from synth.teacher import LiteLLMTeacher, TeacherOptions, check_api_key
from synth.testing import FakeTeacherServer, Fault, Reply, http_date, scripted

MESSAGES = [{"role": "user", "content": "Say hello."}]


def make_teacher(server, **overrides):
    options = TeacherOptions(model="openai/fake-teacher", api_base=server.url, max_retries=2, timeout=3.0,
                             backoff_base=0.01, backoff_max=0.05)
    for key, value in overrides.pop("options", {}).items():
        setattr(options, key, value)
    return LiteLLMTeacher(options, api_key="sk-test", **overrides)


def ask(teacher, messages=MESSAGES):
    return asyncio.run(teacher.complete(messages))


def test_completion_with_usage():
    with FakeTeacherServer(scripted([Reply("Hello there.", prompt_tokens=7, completion_tokens=3)])) as server:
        completion = ask(make_teacher(server))
    assert completion.text == "Hello there."
    assert completion.finish_reason == "stop"
    assert completion.usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert len(server.attempts) == 1


def test_transient_error_is_retried_once_by_one_layer():
    with FakeTeacherServer(scripted([Fault("status", status=503), Reply("ok")])) as server:
        completion = ask(make_teacher(server))
    assert completion.text == "ok" and completion.attempts == 2
    assert len(server.attempts) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 408, 409])
def test_always_failing_request_reaches_server_exactly_1_plus_max_retries(status):
    with FakeTeacherServer(scripted([Fault("status", status=status)])) as server:
        teacher = make_teacher(server, options={"max_retries": 3})
        with pytest.raises(TransientTeacherError):
            ask(teacher)
    assert len(server.attempts) == 4


@pytest.mark.parametrize("make_headers", [
    lambda: {"Retry-After": "1"},
    lambda: {"retry-after-ms": "1000"},
    lambda: {"Retry-After": http_date(time.time() + 2)},   # an HTTP date has whole-second resolution
], ids=["seconds", "ms", "http-date"])
def test_retry_after_is_honoured(make_headers):
    headers = make_headers()
    fault = Fault("status", status=429, headers=headers, error_type="rate_limit_exceeded", error_code="rate_limit_exceeded")
    with FakeTeacherServer(scripted([fault, Reply("ok")])) as server:
        ask(make_teacher(server))
        first, second = server.attempts
    assert second.at - first.at >= 0.9


@pytest.mark.parametrize("fault, reason", [
    (Fault("status", status=401, error_type="invalid_request_error", error_code="invalid_api_key"), "auth"),
    (Fault("status", status=429, error_type="insufficient_quota", error_code="insufficient_quota",
           message="You exceeded your current quota"), "insufficient_quota"),
])
def test_no_retry_on_bad_key_or_exhausted_quota(fault, reason):
    with FakeTeacherServer(scripted([fault])) as server:
        with pytest.raises(FatalTeacherError) as info:
            ask(make_teacher(server))
    assert info.value.reason == reason
    assert len(server.attempts) == 1


@pytest.mark.parametrize("fault", [Fault("silence", hold=30), Fault("drip", interval=0.5, message="x" * 200)])
def test_deadline_cannot_be_stretched(fault):
    with FakeTeacherServer(scripted([fault])) as server:
        teacher = make_teacher(server, options={"timeout": 1.0, "max_retries": 1})
        start = time.monotonic()
        with pytest.raises(TransientTeacherError):
            ask(teacher)
        elapsed = time.monotonic() - start
    assert elapsed < 2 * 1.0 + 1.5
    assert len(server.attempts) == 2


@pytest.mark.parametrize("finish, reason", [("length", "finish_length"), ("content_filter", "finish_content_filter")])
def test_bad_finish_reason_is_a_failure_not_a_record(finish, reason):
    with FakeTeacherServer(scripted([Reply("truncated ans" if finish != "content_filter" else "", finish_reason=finish)])) as server:
        with pytest.raises(TeacherError) as info:
            ask(make_teacher(server))
    assert info.value.reason == reason
    assert len(server.attempts) == 1


def test_cache_means_nothing_is_paid_twice(tmp_path):
    with FakeTeacherServer(scripted([Reply("first"), Reply("second")])) as server:
        cache = RequestCache(tmp_path / "cache.sqlite")
        assert ask(make_teacher(server, cache=cache)).text == "first"
        again = ask(make_teacher(server, cache=RequestCache(tmp_path / "cache.sqlite")))
        other = ask(make_teacher(server, cache=cache, options={"temperature": 0.1}))
    assert again.text == "first" and again.cached
    assert other.text == "second"           # a different parameter is a different request
    assert len(server.attempts) == 2


def test_budget_blocks_a_request_that_could_exceed_the_cap():
    with FakeTeacherServer(scripted([Reply("ok")])) as server:
        teacher = make_teacher(server, budget=Budget(cap=0.0001), options={"model": "openai/gpt-4o"})
        with pytest.raises(BudgetExceeded):
            ask(teacher)
    assert server.attempts == []
    assert teacher.budget.spent == 0.0


def test_budget_settles_real_cost():
    with FakeTeacherServer(scripted([Reply("ok", prompt_tokens=1000, completion_tokens=1000)]), model_name="gpt-4o") as server:
        teacher = make_teacher(server, budget=Budget(cap=1.0), options={"model": "openai/gpt-4o", "max_tokens": 1000})
        completion = ask(teacher)
    assert completion.cost > 0
    assert teacher.budget.spent == pytest.approx(completion.cost)
    assert teacher.budget.reserved == 0


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="OPENAI_API_KEY"):
        check_api_key("gpt-4o", None)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="ANTHROPIC_API_KEY"):
        check_api_key("anthropic/claude-sonnet-4-5", None)
    assert check_api_key("openai/my-model", "http://127.0.0.1:9/v1") is not None   # self-hosted: placeholder key
