"""`synth generate --batch` against the loopback server's /v1/files and /v1/batches: the same records as online,
rounds for Self-Instruct, failed requests and jobs resubmitted, the cost cap, and kills at every job state."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

import synth
from synth.files import read_complete_lines
from synth.testing import BatchPlan, FakeTeacherServer, Fault, explain_reply

TEACHER = "openai/fake-teacher"
FAST = dict(batch=True, batch_poll=0.05, teacher=TEACHER)
CLAUDE = dict(batch=True, batch_poll=0.05, teacher="anthropic/claude-test")


def queries(tmp_path, n=12):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"Explain fact number {i}."}) + "\n" for i in range(n)))
    return path


def responses(run):
    return sorted((r["task"]["id"], r["response"]) for r in synth.load_records(run))


def test_a_batch_run_makes_the_records_an_online_run_makes_at_half_the_price(tmp_path):
    prices = dict(input_cost=2.0, output_cost=8.0)
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        online = synth.generate(queries=str(queries(tmp_path)), out=str(tmp_path / "online"), teacher=TEACHER,
                                api_base=server.url, **prices)
        batch = synth.generate(queries=str(queries(tmp_path)), out=str(tmp_path / "batch"), api_base=server.url,
                               **FAST, **prices)
        jobs = len(server.batches.submitted)
    assert batch.status == "completed" and jobs == 1
    assert responses(tmp_path / "online") == responses(tmp_path / "batch")
    stats = batch.manifest["batch"]
    assert stats["cost_usd"] == pytest.approx(online.manifest["usage"]["cost_usd"] / 2, rel=1e-6)
    assert stats["online_equivalent_usd"] == pytest.approx(online.manifest["usage"]["cost_usd"], rel=1e-6)
    assert batch.manifest["usage"]["cost_usd"] == pytest.approx(stats["cost_usd"], rel=1e-6)


def test_self_instruct_goes_in_rounds_of_jobs(tmp_path):
    from conftest import pipeline_script

    with FakeTeacherServer(pipeline_script) as server:
        result = synth.generate(out=str(tmp_path / "run"), api_base=server.url, num=6, **FAST)
        jobs = len(server.batches.submitted)
    assert result.status == "completed" and result.records >= 6
    assert jobs >= 4                          # bootstrap, classify, instances and answers depend on each other


@pytest.mark.parametrize("provider, status", [("openai", 500), ("anthropic", 529)])
def test_failed_and_expired_requests_go_into_the_next_job(tmp_path, monkeypatch, provider, status):
    """OpenAI's Batch API and Anthropic's Message Batches alike (529: Anthropic's "overloaded")."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    settings = CLAUDE if provider == "anthropic" else FAST

    def script(body, attempt):                # every request fails the first time it is asked
        return Fault("status", status=status) if attempt == 1 else explain_reply(body)

    plans = lambda n: BatchPlan(expire_after=4) if n == 1 else BatchPlan()        # noqa: E731
    with FakeTeacherServer(script, batch_plan=plans) as server:
        result = synth.generate(queries=str(queries(tmp_path)), out=str(tmp_path / "run"), api_base=server.url,
                                max_retries=3, **settings)
        jobs = len(server.batches.submitted)
    assert result.status == "completed" and result.records == 12 and jobs >= 3


def test_a_job_the_provider_fails_is_submitted_once_more_then_its_requests_fail(tmp_path):
    with FakeTeacherServer(lambda body, attempt: explain_reply(body),
                           batch_plan=lambda n: BatchPlan(fail_job=n == 0)) as server:
        once = synth.generate(queries=str(queries(tmp_path)), out=str(tmp_path / "once"), api_base=server.url, **FAST)
    assert once.status == "completed" and once.manifest["batch"]["resubmitted_jobs"] == 1
    with FakeTeacherServer(lambda body, attempt: explain_reply(body),
                           batch_plan=lambda n: BatchPlan(fail_job=True)) as server:
        always = synth.generate(queries=str(queries(tmp_path)), out=str(tmp_path / "always"), api_base=server.url,
                                **FAST)
        jobs = len(server.batches.submitted)
    assert always.status == "incomplete" and always.records == 0 and jobs == 2
    assert always.manifest["counts"]["failed"] == {"batch_failed": 12}


def test_max_cost_reserves_a_whole_job_before_submitting_it(tmp_path):
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        result = synth.generate(queries=str(queries(tmp_path, 40)), out=str(tmp_path / "run"), api_base=server.url,
                                max_cost=0.001, input_cost=100.0, output_cost=100.0, batch_size=10, **FAST)
    assert result.status == "stopped_budget"
    assert result.manifest["usage"]["total_cost_usd"] <= 0.001


@pytest.mark.parametrize("kill_at", ["validating", "in_progress", "finalizing", "completed"])
def test_a_kill_at_any_job_state_resumes_without_submitting_twice(tmp_path, kill_at):
    plan = BatchPlan(states=("validating",) * 3 + ("in_progress",) * 3 + ("finalizing",) * 3 + ("completed",))
    with FakeTeacherServer(lambda body, attempt: explain_reply(body), batch_plan=lambda n: plan) as server:
        args = [sys.executable, "-m", "synth", "generate", "--queries", str(queries(tmp_path)), "--teacher", TEACHER,
                "--api-base", server.url, "--batch", "--batch-poll", "0.2", "--out", str(tmp_path / "run")]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "OPENAI_API_KEY": "sk-test"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(j.status == kill_at for j in server.batches.jobs.values()):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        result = synth.generate(resume=str(tmp_path / "run"), batch_poll=0.05)
        submitted = [line["custom_id"] for job in server.batches.jobs.values() for line in job.lines]
    assert result.status == "completed" and result.records == 12
    assert max(Counter(submitted).values()) == 1                  # no request was ever in two jobs
    assert len({r["id"] for r in read_complete_lines(tmp_path / "run" / "data.jsonl")}) == 12


# ---- Anthropic's Message Batches, through the official SDK against the loopback server's /v1/messages/batches ----

def test_message_batches_make_the_records_openai_batches_make_at_half_the_price(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    prices = dict(input_cost=3.0, output_cost=15.0)
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        openai = synth.generate(queries=str(queries(tmp_path)), out=str(tmp_path / "openai"), api_base=server.url,
                                **FAST, **prices)
        assert openai.status == "completed" and openai.records == 12
        claude = synth.generate(queries=str(queries(tmp_path)), out=str(tmp_path / "claude"), api_base=server.url,
                                **CLAUDE, **prices)
        jobs = [server.batches.jobs[j] for j in server.batches.submitted]
    assert claude.status == "completed" and claude.records == 12
    assert [j.anthropic for j in jobs] == [False, True]
    assert responses(tmp_path / "openai") == responses(tmp_path / "claude")
    sent = jobs[1].lines[0]["body"]
    assert sent["model"] == "claude-test" and sent["messages"][0]["role"] == "system"   # sent apart, put back here
    stats = claude.manifest["batch"]
    assert stats["cost_usd"] == pytest.approx(stats["online_equivalent_usd"] / 2, rel=1e-6) and stats["cost_usd"] > 0
    assert claude.manifest["usage"]["cost_usd"] == pytest.approx(stats["cost_usd"], rel=1e-6)


def test_a_message_batch_whose_creation_a_kill_cut_off_is_found_by_its_size_and_time(tmp_path):
    import asyncio

    from synth.teacher.batch_apis import AnthropicBatches

    async def scenario(url):
        api = AnthropicBatches(url, "sk-ant-test")
        started = time.time()
        lines = [(f"k{i}", {"model": "anthropic/claude-test", "max_tokens": 8,
                            "messages": [{"role": "user", "content": f"q{i}"}]}) for i in range(3)]
        other = await api.create(None, lines[:2], "t0", "24h")        # an older job of another size
        job = await api.create(None, lines, "t1", "24h")
        found = [await api.find_tagged("t1", started, 3, set()), await api.find_tagged("t1", started, 3, {job}),
                 await api.find_tagged("t1", started + 60, 3, set())]
        await api.aclose()
        return other, job, found

    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        other, job, found = asyncio.run(scenario(server.url))
    assert other != job and found == [job, None, None]   # not one already claimed, not one made before it was written
