"""The teacher layer over litellm's real HTTP client, against the scripted server on loopback."""

import asyncio
import time
from collections import Counter

import pytest

from synth.teacher.breaker import OutageBreaker
from synth.teacher.budget import Budget, Prices
from synth.teacher.cache import RequestCache
from synth.errors import (BudgetExceeded, ConfigError, FatalTeacherError, MissingKeyError, TeacherError,
                          TeacherOutageError, TransientTeacherError)
from synth.teacher.client import LiteLLMTeacher, TeacherOptions, check_api_key
from synth.testing import FakeTeacherServer, Fault, Reply, http_date, scripted

MESSAGES = [{"role": "user", "content": "Say hello."}]
# litellm (the default) and synth's own wire client (--client openai) must behave the same on the wire
BOTH_CLIENTS = pytest.mark.parametrize("client", ["litellm", "openai"])


def make_teacher(server, client="litellm", **overrides):
    options = TeacherOptions(model="openai/fake-teacher", api_base=server.url, max_retries=2, timeout=3.0,
                             backoff_base=0.01, backoff_max=0.05, client=client)
    for key, value in overrides.pop("options", {}).items():
        setattr(options, key, value)
    return LiteLLMTeacher(options, api_key="sk-test", **overrides)


def ask(teacher, messages=MESSAGES):
    return asyncio.run(teacher.complete(messages))


@BOTH_CLIENTS
def test_completion_with_usage(client):
    with FakeTeacherServer(scripted([Reply("Hello there.", prompt_tokens=7, completion_tokens=3)])) as server:
        completion = ask(make_teacher(server, client))
    assert completion.text == "Hello there."
    assert completion.finish_reason == "stop"
    assert completion.usage == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert len(server.attempts) == 1


@BOTH_CLIENTS
def test_transient_error_is_retried_once_by_one_layer(client):
    with FakeTeacherServer(scripted([Fault("status", status=503), Reply("ok")])) as server:
        completion = ask(make_teacher(server, client))
    assert completion.text == "ok" and completion.attempts == 2
    assert len(server.attempts) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 408, 409])
@BOTH_CLIENTS
def test_always_failing_request_reaches_server_exactly_1_plus_max_retries(status, client):
    with FakeTeacherServer(scripted([Fault("status", status=status)])) as server:
        teacher = make_teacher(server, client, options={"max_retries": 3})
        with pytest.raises(TransientTeacherError):
            ask(teacher)
    assert len(server.attempts) == 4


@pytest.mark.parametrize("make_headers", [
    lambda: {"Retry-After": "1"},
    lambda: {"retry-after-ms": "1000"},
    lambda: {"Retry-After": http_date(time.time() + 2)},   # an HTTP date has whole-second resolution
], ids=["seconds", "ms", "http-date"])
@BOTH_CLIENTS
def test_retry_after_is_honoured(make_headers, client):
    headers = make_headers()
    fault = Fault("status", status=429, headers=headers, error_type="rate_limit_exceeded", error_code="rate_limit_exceeded")
    with FakeTeacherServer(scripted([fault, Reply("ok")])) as server:
        ask(make_teacher(server, client))
        first, second = server.attempts
    assert second.at - first.at >= 0.9


@pytest.mark.parametrize("fault, reason", [
    (Fault("status", status=401, error_type="invalid_request_error", error_code="invalid_api_key"), "auth"),
    (Fault("status", status=429, error_type="insufficient_quota", error_code="insufficient_quota",
           message="You exceeded your current quota"), "insufficient_quota"),
])
@BOTH_CLIENTS
def test_no_retry_on_bad_key_or_exhausted_quota(fault, reason, client):
    with FakeTeacherServer(scripted([fault])) as server:
        with pytest.raises(FatalTeacherError) as info:
            ask(make_teacher(server, client))
    assert info.value.reason == reason
    assert len(server.attempts) == 1


@pytest.mark.parametrize("fault", [Fault("silence", hold=30), Fault("drip", interval=0.5, message="x" * 200)])
@BOTH_CLIENTS
def test_deadline_cannot_be_stretched(fault, client):
    with FakeTeacherServer(scripted([fault])) as server:
        teacher = make_teacher(server, client, options={"timeout": 1.0, "max_retries": 1})
        start = time.monotonic()
        with pytest.raises(TransientTeacherError):
            ask(teacher)
        elapsed = time.monotonic() - start
    assert elapsed < 2 * 1.0 + 1.5
    assert len(server.attempts) == 2


@pytest.mark.parametrize("finish, reason", [("length", "finish_length"), ("content_filter", "finish_content_filter")])
@BOTH_CLIENTS
def test_bad_finish_reason_is_a_failure_not_a_record(finish, reason, client):
    with FakeTeacherServer(scripted([Reply("truncated ans" if finish != "content_filter" else "", finish_reason=finish)])) as server:
        with pytest.raises(TeacherError) as info:
            ask(make_teacher(server, client))
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


def gather_all(teacher, prompts, limit=30.0):
    """Ask every prompt at once; each result is a Completion or the exception it raised."""
    async def run():
        calls = [teacher.complete([{"role": "user", "content": p}]) for p in prompts]
        return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), limit)
    return asyncio.run(run())


def test_one_always_failing_request_among_healthy_ones_stops_at_1_plus_max_retries():
    """Default max_retries (5) and concurrency (16), so the default outage breaker (threshold 4) is in play.
    Backoff is shortened only to keep the test quick. The healthy requests succeed around the bad one's first
    attempt and are done before its second, so its last five failures come in a row with nothing else in
    flight: more than the breaker's threshold, and still not an outage."""
    def script(body, attempt):
        if body["messages"][-1]["content"] == "poison":
            return Fault("status", status=500)
        return Reply("fine", delay=0.02)

    with FakeTeacherServer(script) as server:
        options = TeacherOptions(model="openai/fake-teacher", api_base=server.url, backoff_base=0.6, backoff_max=0.6)
        assert (options.max_retries, options.concurrency) == (5, 16)
        results = gather_all(LiteLLMTeacher(options, api_key="sk-test"), ["poison"] + [f"healthy {i}" for i in range(32)])
        poison = [a for a in server.attempts if a.body["messages"][-1]["content"] == "poison"]
    assert isinstance(results[0], TransientTeacherError)
    assert all(r.text == "fine" for r in results[1:])
    assert len(poison) == 1 + 5


def test_a_total_outage_pauses_then_stops_after_max_outage():
    with FakeTeacherServer(scripted([Fault("status", status=503)])) as server:
        teacher = make_teacher(server, options={"max_retries": 5, "max_outage": 1.5})
        start = time.monotonic()
        results = gather_all(teacher, [f"question {i}" for i in range(8)], limit=20.0)
        elapsed = time.monotonic() - start
    assert all(isinstance(r, TeacherOutageError) for r in results), results
    message = str(results[0])
    assert "\n" not in message and "--max-outage" in message and "http_503" in message
    assert 1.5 <= elapsed < 4.0
    assert len(server.attempts) <= 8 * 2 + 3            # the first wave, its retries before the breaker opened, probes


def test_failed_probes_are_free_only_up_to_max_retries():
    """Two requests that always fail, with nothing else left, look like an outage; they still end."""
    with FakeTeacherServer(scripted([Fault("status", status=500)])) as server:
        teacher = make_teacher(server, options={"max_retries": 2})
        teacher.breaker = OutageBreaker(threshold=4, first_pause=0.05, max_pause=0.1)
        results = gather_all(teacher, ["bad one", "bad two"])
        per_request = Counter(a.key for a in server.attempts)
    assert all(isinstance(r, TransientTeacherError) and not isinstance(r, TeacherOutageError) for r in results)
    assert teacher.breaker.outages >= 1
    # Each request ends: its own 1 + max_retries attempts, plus at most max_retries failed probes that cost it
    # nothing. How many probes fall to which request depends on when the breaker opened, so only the bounds are
    # fixed; a failed probe was free for at least one of them (the breaker opened, so one was sent).
    assert all(1 + 2 <= n <= 1 + 2 * 2 for n in per_request.values()), per_request
    assert sum(per_request.values()) > 2 * (1 + 2), per_request


@BOTH_CLIENTS
def test_reply_with_no_finish_reason_is_retried_and_never_saved(tmp_path, client):
    cut = "This reply was cut off mid-sent"
    with FakeTeacherServer(scripted([Reply(cut, finish_reason=None), Reply("The whole answer.")])) as server:
        cache = RequestCache(tmp_path / "cache.sqlite")
        completion = ask(make_teacher(server, client, cache=cache))
        cache.close()
        assert [a.finish_reason for a in server.attempts] == [None, "stop"]
    assert completion.text == "The whole answer." and completion.attempts == 2
    assert completion.finish_reason == "stop"
    for path in tmp_path.iterdir():                    # the cache, its journal and WAL
        assert cut.encode() not in path.read_bytes()


@BOTH_CLIENTS
def test_given_prices_feed_cost_and_reservation(client):
    with FakeTeacherServer(scripted([Reply("ok", prompt_tokens=1000, completion_tokens=500)])) as server:
        teacher = make_teacher(server, client, budget=Budget(cap=1.0),
                               options={"input_cost": 2.0, "output_cost": 8.0, "max_tokens": 500})
        completion = ask(teacher)
        assert completion.cost == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
        assert teacher.budget.spent == pytest.approx(completion.cost)
        capped = make_teacher(server, client, budget=Budget(cap=0.001), options={"input_cost": 2.0, "output_cost": 8.0})
        with pytest.raises(BudgetExceeded):                 # 1024 completion tokens at $8/M is more than $0.001
            ask(capped)
        assert len(server.attempts) == 1


def test_prices_are_required_for_a_cap_only_where_litellm_has_none():
    assert Prices("openai/gpt-4o").known
    assert not Prices("openai/my-self-hosted-model").known
    with pytest.raises(ConfigError, match="--input-cost and --output-cost"):
        Prices("openai/my-self-hosted-model").require()
    Prices("openai/my-self-hosted-model", 0.0, 0.0).require()       # free, and said so


def test_cache_label_stands_for_the_api_base_in_the_key():
    def teacher(api_base, label=None):
        return LiteLLMTeacher(TeacherOptions(model="openai/smollm2", api_base=api_base, cache_label=label), api_key="x")

    first, second = teacher("http://127.0.0.1:41001/v1", "local"), teacher("http://127.0.0.1:52002/v1", "local")
    assert first.cache_key(first.request(MESSAGES)) == second.cache_key(second.request(MESSAGES))
    assert second.request(MESSAGES)["api_base"] == "http://127.0.0.1:52002/v1"     # still sent to the real port
    unlabelled = teacher("http://127.0.0.1:41001/v1"), teacher("http://127.0.0.1:52002/v1")
    assert len({t.cache_key(t.request(MESSAGES)) for t in unlabelled}) == 2


def test_a_local_run_labels_its_cache_key(tmp_path, monkeypatch):
    from synth.generation.config import GenerateConfig
    from synth.teacher.session import TeacherSession

    class Server:
        model, api_base = "openai/smollm2-135m-instruct", "http://127.0.0.1:40404/v1"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def exit_reason(self):
            return None

    monkeypatch.setattr("synth.teacher.session.LocalTeacherServer", Server)
    with TeacherSession("local", GenerateConfig(concurrency=8), folder=tmp_path) as teacher:
        options = teacher.options
    assert (options.model, options.api_base, options.concurrency, options.cache_label) == (
        Server.model, Server.api_base, 1, "local")


@BOTH_CLIENTS
def test_a_cut_reply_is_paid_for_and_counted_against_the_cap(client):
    one = (1000 * 2.0 + 500 * 8.0) / 1e6
    replies = [Reply("cut sho", finish_reason=None, prompt_tokens=1000, completion_tokens=500),
               Reply("whole", prompt_tokens=1000, completion_tokens=500)]
    with FakeTeacherServer(scripted(replies)) as server:
        teacher = make_teacher(server, client, budget=Budget(cap=1.0), options={"input_cost": 2.0, "output_cost": 8.0})
        completion = ask(teacher)
    assert completion.cost == pytest.approx(one)                       # the record's own reply
    assert teacher.budget.spent == pytest.approx(2 * one) == teacher.usage.cost   # what the server billed


def test_the_spend_ledger_books_tokens_attempts_and_purpose_and_reloads_them(tmp_path):
    replies = [Fault("status", status=500), Reply("whole", prompt_tokens=1000, completion_tokens=500)]
    ledger = tmp_path / "spend.jsonl"
    with FakeTeacherServer(scripted(replies)) as server:
        budget = Budget.with_ledger(None, ledger)
        teacher = make_teacher(server, budget=budget, options={"input_cost": 2.0, "output_cost": 8.0,
                                                               "backoff_base": 0.01})
        ask(teacher)
        budget.reserve(0.5)                  # a request in flight when the process dies: reserved, never settled
        budget.close()
    again = Budget.with_ledger(None, ledger)
    teacher_tally = again.tally("teacher").settled()
    assert teacher_tally == {"requests": 1, "attempts": 2, "prompt_tokens": 1000, "completion_tokens": 500,
                             "cost_usd": pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)}
    assert again.tally("verifier").requests == 0
    assert again.unsettled == pytest.approx(0.5) and again.spent == pytest.approx(0.5 + teacher_tally["cost_usd"])
    again.settle(again.reserve(0.0), 0.25, purpose="verifier", attempts=1, prompt_tokens=9, completion_tokens=1)
    assert again.tally("verifier").settled()["cost_usd"] == 0.25 and again.tally("teacher").requests == 1


def test_a_new_request_takes_the_http_pool_with_the_fewest_in_flight():
    """Round-robin would queue a request behind a pool busy with slow replies while others sit idle."""
    async def picks():
        teacher = LiteLLMTeacher(TeacherOptions(model="openai/x", api_base="http://127.0.0.1:9/v1", concurrency=64),
                                 check_key=False)
        pool = teacher.fleet.endpoints[0].pool
        try:
            first = [pool.take()[0] for _ in range(64)]             # 64 in flight over the pools, evenly
            loads = list(pool.load)
            for _ in range(3):                                      # three replies come back on pool 2
                pool.give_back(2)
            again = [pool.take()[0] for _ in range(3)]
            return first, loads, again
        finally:
            await teacher.aclose()
    first, loads, again = asyncio.run(picks())
    assert len(loads) == 4 and max(loads) - min(loads) == 0
    assert again == [2, 2, 2]


def test_pools_are_made_as_the_load_needs_them_not_for_the_setting():
    """--concurrency 4096 with three requests in flight makes one small pool, not 256 of them."""
    async def picks():
        teacher = LiteLLMTeacher(TeacherOptions(model="openai/x", api_base="http://127.0.0.1:9/v1", concurrency=4096),
                                 check_key=False)
        try:
            for _ in range(3):
                teacher.fleet.endpoints[0].pool.take()
            return len(teacher.fleet.endpoints[0].pool.clients), teacher.fleet.endpoints[0].pool.max_shards
        finally:
            await teacher.aclose()
    made, most = asyncio.run(picks())
    assert made == 1 and most == 256


def test_an_unpriced_model_is_looked_up_in_litellms_map_once(monkeypatch):
    import litellm

    asked = []
    real = litellm.cost_per_token

    def counting(**kwargs):
        asked.append(kwargs["model"])
        return real(**kwargs)

    monkeypatch.setattr(litellm, "cost_per_token", counting)
    selfhosted = Prices("openai/my-own-vllm-model")
    assert [selfhosted.cost(100, 50) for _ in range(5)] == [None] * 5 and not selfhosted.known
    assert asked == ["openai/my-own-vllm-model"]
    priced = Prices("gpt-4o-mini")
    costs = [priced.cost(1000 * k, 0) for k in (1, 2)]
    assert costs[1] == pytest.approx(2 * costs[0]) and costs[0] > 0 and asked.count("gpt-4o-mini") == 3


@BOTH_CLIENTS
@pytest.mark.parametrize("fault", [Fault("malformed"), Fault("reset"), Fault("html", status=502, message="bad gateway")],
                         ids=["malformed", "reset", "html-502"])
def test_a_garbled_or_dropped_reply_is_retried(fault, client):
    with FakeTeacherServer(scripted([fault, Reply("ok")])) as server:
        completion = ask(make_teacher(server, client))
    assert completion.text == "ok" and completion.attempts == 2 and len(server.attempts) == 2


def test_the_wire_client_stops_with_one_line_when_nothing_listens():
    teacher = LiteLLMTeacher(TeacherOptions(model="openai/x", api_base="http://127.0.0.1:9/v1", client="openai",
                                            max_retries=20, backoff_base=0.01, backoff_max=0.02), check_key=False)
    with pytest.raises(FatalTeacherError) as info:
        ask(teacher)
    assert info.value.reason == "unreachable" and "--api-base" in str(info.value)


def test_the_wire_client_needs_an_address_and_never_imports_litellm(tmp_path):
    """--client openai without --api-base is a one-line error; with one, a run never imports litellm (its import
    alone takes seconds of a run's start)."""
    import subprocess
    import sys

    with pytest.raises(ConfigError, match="--client openai"):
        check_api_key("openai/x", None, "openai")
    code = ("import sys, json, synth\n"
            "from synth.testing import FakeTeacherServer, Reply, scripted\n"
            f"open({str(tmp_path / 'q.jsonl')!r}, 'w').write(json.dumps({{'id': 'q1', 'instruction': 'Say hi.'}}) + '\\n')\n"
            "with FakeTeacherServer(scripted([Reply('Hello, and here is why: a greeting opens a talk.')])) as s:\n"
            f"    r = synth.generate(queries={str(tmp_path / 'q.jsonl')!r}, out={str(tmp_path / 'run')!r}, "
            "teacher='openai/x', api_base=s.url, client='openai')\n"
            "print(r.records, 'litellm' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["1", "False"], out.stderr[-2000:]


@BOTH_CLIENTS
def test_nothing_is_sent_after_an_error_that_stops_the_run(client):
    """Requests queued for a slot when the key is refused never reach the server: the run is lost, and each one
    would be another refused (or, for an exhausted quota, billed) call."""
    fault = Fault("status", status=401, error_type="invalid_request_error", error_code="invalid_api_key")

    async def many(teacher):
        return await asyncio.gather(*(teacher.complete([{"role": "user", "content": f"Q{i}"}]) for i in range(6)),
                                    return_exceptions=True)

    with FakeTeacherServer(scripted([fault])) as server:
        outcomes = asyncio.run(many(make_teacher(server, client, options={"concurrency": 1})))
    assert all(isinstance(o, FatalTeacherError) and o.reason == "auth" for o in outcomes)
    assert len(server.attempts) == 1


@BOTH_CLIENTS
def test_a_teacher_that_lost_a_run_still_answers_calls_made_after_it(client):
    """Only requests begun before the error that stopped the run are held back: a library caller that tries again
    once the server is fixed gets through."""
    state = {"refuse": True}
    fault = Fault("status", status=401, error_type="invalid_request_error", error_code="invalid_api_key")
    with FakeTeacherServer(lambda body, attempt: fault if state["refuse"] else Reply("ok")) as server:
        teacher = make_teacher(server, client)
        with pytest.raises(FatalTeacherError):
            ask(teacher)
        state["refuse"] = False
        assert ask(teacher).text == "ok"


@BOTH_CLIENTS
def test_a_servers_own_fields_go_at_the_top_of_the_body(client):
    """extra_body (how the embedded judge sends its grammar) is merged into the request, as the SDK does."""
    with FakeTeacherServer(scripted([Reply("ok")])) as server:
        ask(make_teacher(server, client, options={"extra": {"extra_body": {"grammar": "root ::= \"ok\""}}}))
        body = server.attempts[0].body
    assert body["grammar"] == 'root ::= "ok"' and "extra_body" not in body


def test_a_cost_cap_on_the_wire_client_needs_given_prices():
    from synth.generation.config import GenerateConfig
    from synth.teacher.session import check_teacher

    config = GenerateConfig(client="openai", api_base="http://127.0.0.1:9/v1", max_cost=1.0)
    with pytest.raises(ConfigError, match="--input-cost"):
        check_teacher("openai/gpt-4o-mini", config)      # litellm knows this price; the wire client books none
    config.input_cost, config.output_cost = 0.15, 0.6
    assert check_teacher("openai/gpt-4o-mini", config) is None
