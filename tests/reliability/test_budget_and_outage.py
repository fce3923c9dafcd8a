"""--max-cost holds across kills, and a sustained outage pauses the run instead of hammering the server."""

import json
import signal
import time

import litellm
import pytest

import synth
from synth.files import read_complete_lines
from synth.testing import FakeTeacherServer, OutageScript, explain_reply

from .conftest import outcomes, run_synth, start_synth, synth_args, write_queries

CAP = 0.05


def priced_reply(body, attempt):
    reply = explain_reply(body)
    reply.delay = 0.05
    return reply


def served_costs(server):
    """What each reply the server sent costs, at gpt-4o's prices."""
    costs = []
    for a in server.attempts:
        if a.outcome == "reply":
            prompt = sum(len(m["content"]) for m in a.body["messages"]) // 4 + 1
            p, c = litellm.cost_per_token(model="gpt-4o", prompt_tokens=prompt, completion_tokens=300)
            costs.append(p + c)
    return costs


def served_cost(server):
    return sum(served_costs(server))


def priced_run(server, tmp_path, run, queries, *extra):
    """synth answering `queries` queries as gpt-4o (priced) from the loopback server, 4 at a time."""
    path = write_queries(tmp_path / "q.jsonl", queries)
    return start_synth(["generate", "--queries", str(path), "--teacher", "openai/gpt-4o", "--api-base", server.url,
                        "--out", str(run), "--max-tokens", "400", "--concurrency", "4", *extra])


def kill_after_lines(proc, path, lines):
    """SIGKILL the process once `path` holds `lines` lines."""
    while proc.poll() is None and not (path.exists() and path.read_bytes().count(b"\n") >= lines):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_max_cost_holds_across_kills(tmp_path):
    with FakeTeacherServer(priced_reply, model_name="gpt-4o") as server:
        run = tmp_path / "run"
        kill_after_lines(priced_run(server, tmp_path, run, 100, "--max-cost", str(CAP)), run / "spend.jsonl", 6)
        result = run_synth(["generate", "--resume", str(run)])
        assert result.returncode == 3, result.stderr            # stopped at the cap, cleanly
        assert "--max-cost" in result.stderr
        again = run_synth(["generate", "--resume", str(run)])
        assert again.returncode == 3
        ledger = list(read_complete_lines(run / "spend.jsonl"))
        per_request = max(r["cost"] for r in ledger if "cost" in r)
        spent = served_cost(server)
    assert all("estimate" in r or "cost" in r for r in ledger)
    assert 0 < spent <= CAP + 4 * per_request                   # the cap plus what was in flight at the kill
    settled = sum(r["cost"] for r in ledger if "cost" in r)
    assert settled <= CAP + 1e-9
    assert sum(outcomes(run).values()) < 100


def test_usage_totals_in_the_manifest_survive_a_kill(tmp_path):
    """Tokens and cost are sums over the spend ledger, not a manifest saved every 2 s: a kill loses none of them."""
    with FakeTeacherServer(priced_reply, model_name="gpt-4o") as server:
        run = tmp_path / "run"
        kill_after_lines(priced_run(server, tmp_path, run, 80), run / "data.jsonl", 25)
        result = run_synth(["generate", "--resume", str(run)])
        assert result.returncode == 0, result.stderr
        served = [a for a in server.attempts if a.outcome == "reply"]
        costs = served_costs(server)
    usage = json.loads((run / "manifest.json").read_text())["usage"]
    records = list(read_complete_lines(run / "data.jsonl"))
    assert len(records) == 80
    recorded = sum(r["provenance"]["usage"]["completion_tokens"] for r in records)
    lost_in_flight = 4 * 300                                     # replies the kill cut off before they were booked
    assert recorded <= usage["completion_tokens"] <= sum(a.usage["completion_tokens"] for a in served)
    assert usage["completion_tokens"] >= sum(a.usage["completion_tokens"] for a in served) - lost_in_flight
    assert sum(costs) - 4 * max(costs) - 1e-6 <= usage["cost_usd"] <= sum(costs) + 1e-6
    assert usage["total_cost_usd"] == pytest.approx(usage["cost_usd"] + usage.get("unsettled_usd", 0.0), abs=1e-6)


def test_sustained_outage_pauses_and_recovers(tmp_path):
    script = OutageScript(8.0)
    with FakeTeacherServer(script) as server:
        queries = write_queries(tmp_path / "q.jsonl", 250)
        result = synth.generate(queries=str(queries), out=str(tmp_path / "run"), teacher="openai/fake-teacher",
                                api_base=server.url, concurrency=16, timeout=5.0, max_retries=5)
        during = [a for a in server.attempts if script.start <= a.at < script.end]
        after = [a.at for a in server.attempts if a.at >= script.end and a.outcome == "reply"]
    assert result.status == "completed" and not result.manifest["counts"]["failed"]
    assert len(during) <= 16 + 12 + 16        # the in-flight wave, one probe at a time, a margin: not a storm
    assert after and after[0] - script.end <= 10.0


def test_an_outage_longer_than_max_outage_stops_the_run_and_resume_finishes_it(tmp_path):
    script = OutageScript(8.0, after=0.5)
    with FakeTeacherServer(script) as server:
        queries = write_queries(tmp_path / "q.jsonl", 150)
        run = tmp_path / "run"
        stopped = run_synth(synth_args(server, queries, run, "--concurrency", "16", "--max-outage", "2"))
        stopped_at = time.monotonic()
        assert stopped.returncode == 4, stopped.stderr
        lines = [l for l in stopped.stderr.splitlines() if l.strip() and not l.startswith(("records", "generate settings:"))]
        assert len(lines) == 1 and "--max-outage" in lines[0] and "Traceback" not in stopped.stderr, stopped.stderr
        assert stopped_at < script.end                          # it gave up before the server came back...
        assert not any(r["kind"] == "failed" for r in read_complete_lines(run / "rejected.jsonl"))  # ...failing nothing
        time.sleep(max(0.0, script.end - time.monotonic()))
        resumed = run_synth(["generate", "--resume", str(run)])
        assert resumed.returncode == 0, resumed.stderr
    ended = outcomes(run)
    assert len(ended) == 150 and set(ended.values()) == {1}
