"""A fleet of self-hosted teachers driven from one process, and a concurrency that adapts to the provider."""

import asyncio
import json
import threading
import time

import pytest

import synth
from synth.generation.config import GenerateConfig
from synth.teacher.fleet import Fleet
from synth.teacher.ratelimit import CUT, AdaptiveLimit
from synth.testing import FakeTeacherServer, Reply, explain_reply

from test_cli import synth_cli


def queries(tmp_path, n):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"Explain fact number {i}."}) + "\n" for i in range(n)))
    return path


def test_api_base_takes_a_fleet_as_a_list_a_repeat_or_a_file(tmp_path):
    urls = ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1", "http://127.0.0.1:8003/v1"]
    (tmp_path / "fleet.txt").write_text(f"{urls[0]}\n# a comment\n{urls[1]}  # the second\n\n{urls[2]}\n")
    assert GenerateConfig(api_base=",".join(urls)).endpoints() == urls
    assert GenerateConfig(api_base=f"@{tmp_path / 'fleet.txt'}").endpoints() == urls
    options = GenerateConfig(api_base=",".join(urls)).options("openai/m")
    assert options.endpoints == urls and options.api_base == urls[0] and options.cache_label == "fleet"
    problems = GenerateConfig(api_base=f"{urls[0]},notaurl").problems()
    assert problems == ["--api-base must be an http:// or https:// URL, not 'notaurl'"]
    result = synth_cli("generate", "--api-base", urls[0], "--api-base", "nope", "--teacher", "openai/m",
                       "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "not 'nope'" in result.stderr


def test_the_fleet_sends_to_the_least_loaded_fastest_endpoint_and_takes_a_failing_one_out():
    async def scenario():
        fleet = Fleet(["http://a/v1", "http://b/v1", "http://c/v1"], "sk-test", 64, 5)
        a, b, c = fleet.endpoints
        for endpoint, seconds in ((a, 0.1), (b, 1.0), (c, 0.1)):
            endpoint.latency = seconds
        picks = [fleet.take() for _ in range(6)]
        counts = {e.url: sum(p[0] is e for p in picks) for e in fleet.endpoints}
        for _ in range(3):                                   # c fails three times in a row: taken out
            c.inflight += 1
            fleet.done(c, 0, answered=False, seconds=1.0, down=True)
        out = [fleet.take()[0].url for _ in range(4)]
        await fleet.aclose()
        return counts, c.out_until > time.monotonic(), out, fleet.stats()["http://c/v1"]

    counts, taken_out, after, stats = asyncio.run(scenario())
    assert counts["http://a/v1"] + counts["http://c/v1"] == 6 and counts["http://b/v1"] == 0   # 10x slower: none
    assert taken_out and "http://c/v1" not in after
    assert stats["failures"] == 3 and stats["times_taken_out"] == 1


@pytest.mark.parametrize("client", ["litellm", "openai"])
def test_a_fleet_keeps_going_when_one_server_dies_and_comes_back(tmp_path, client):
    script = lambda body, attempt: Reply(explain_reply(body).content, delay=0.1)        # noqa: E731
    servers = [FakeTeacherServer(script).start() for _ in range(3)]
    port = servers[2].port
    try:
        def outage():
            deadline = time.monotonic() + 30
            while len(servers[2].attempts) < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            servers[2].stop()                                  # down mid-run...
            time.sleep(1.0)
            servers[2] = FakeTeacherServer(script, port=port).start()   # ...and back on the same port

        killer = threading.Thread(target=outage)
        killer.start()
        result = synth.generate(queries=str(queries(tmp_path, 240)), out=str(tmp_path / "run"),
                                teacher="openai/fake-teacher", api_base=",".join(s.url for s in servers),
                                concurrency=6, max_retries=3, client=client)
        killer.join()
        back = len(servers[2].attempts)
    finally:
        for server in servers:
            server.stop()
    assert result.status == "completed" and result.records == 240
    endpoints = result.manifest["endpoints"]
    assert len(endpoints) == 3 and sum(e["requests"] for e in endpoints.values()) >= 240
    assert min(e["requests"] for e in endpoints.values()) >= 5          # every server carried load
    assert back > 0                                                     # the server that came back was used again
    records = synth.load_records(tmp_path / "run")
    assert len({r["id"] for r in records}) == 240                       # nothing lost, nothing twice


def test_adaptive_concurrency_grows_on_replies_and_cuts_on_429s():
    async def scenario():
        limit = AdaptiveLimit(start=4, low=1, high=64)
        for _ in range(40):
            await limit.acquire()
            limit.release("ok", 0.1)
        grown = limit.limit
        await limit.acquire()
        limit.release("throttled", 0.1)
        cut = limit.limit
        await limit.acquire()
        limit.release("throttled", 0.1)                      # the same burst of refusals: counted once
        return grown, cut, limit.limit

    grown, cut, again = asyncio.run(scenario())
    assert grown > 8 and cut == pytest.approx(grown * CUT) and again == cut and CUT < 1


def test_adaptive_concurrency_backs_off_from_latency_that_doubles():
    limit = AdaptiveLimit(start=20, high=64)

    async def run():
        for seconds in (0.1, 0.1, 0.5):
            await limit.acquire()
            limit.release("ok", seconds)

    asyncio.run(run())
    assert limit.limit < 20


class Busy:
    """A provider with a hidden limit: more than `most` requests in any half second are refused with a 429."""

    def __init__(self, most: int):
        self.most, self.times, self.lock = most, [], threading.Lock()

    def __call__(self, body, attempt):
        from synth.testing import Fault

        with self.lock:
            now = time.monotonic()
            self.times = [t for t in self.times if t > now - 0.5]
            if len(self.times) >= self.most:
                return Fault("status", status=429, headers={"Retry-After": "0.2"}, error_type="rate_limit_exceeded")
            self.times.append(now)
        return Reply(explain_reply(body).content, delay=0.05)


def test_auto_concurrency_settles_under_a_hidden_limit(tmp_path):
    with FakeTeacherServer(Busy(most=8)) as server:
        result = synth.generate(queries=str(queries(tmp_path, 60)), out=str(tmp_path / "run"),
                                teacher="openai/fake-teacher", api_base=server.url, concurrency="auto",
                                max_retries=20, max_outage=60)
        refused = sum(a.outcome == "status" for a in server.attempts)
    concurrency = result.manifest["concurrency"]
    assert result.status == "completed" and result.records == 60
    assert concurrency["timeline"] and concurrency["final"] < 64 and refused > 0
