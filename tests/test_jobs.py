"""The jobs engine that judges and evaluators share: every job ends once, unparseable replies keep their raw text,
a rerun sends only what is not answered yet, and --max-cost stops it cleanly."""

import asyncio
import json


from synth.files import read_complete_lines
from synth.teacher import LiteLLMTeacher, TeacherOptions
from synth.teacher.budget import Budget
from synth.teacher.jobs import Job, VerdictError, answered_ids, latest_rows, run_jobs
from synth.testing import FakeTeacherServer, Reply


def score(text: str) -> int:
    if not text.strip().isdigit():
        raise VerdictError("unparseable", f"not a number: {text[:40]!r}")
    return int(text)


def jobs(n):
    return [Job(f"j{i}", [{"role": "user", "content": f"question {i}"}], {"row": i}) for i in range(n)]


def reply_by_question(body, attempt):
    n = int(body["messages"][-1]["content"].split()[-1])
    return Reply("no idea" if n % 3 == 0 else str(n * 10))


def teacher(server, **options):
    return LiteLLMTeacher(TeacherOptions(model="openai/judge", api_base=server.url, max_retries=0, timeout=5,
                                         **options), api_key="sk-test", budget=options.pop("budget", None))


def test_every_job_ends_once_and_a_rerun_sends_only_the_unanswered(tmp_path):
    out = tmp_path / "scores.jsonl"
    with FakeTeacherServer(reply_by_question) as server:
        first = asyncio.run(run_jobs(teacher(server), jobs(9), score, out))
        assert first.answered == 6 and first.failed == {"unparseable": 3}
        rows = list(read_complete_lines(out))
        failed = [r for r in rows if r["status"] == "failed"]
        assert len(rows) == 9 and all(r["raw"] == "no idea" and r["reason"] == "unparseable" for r in failed)
        assert {r["id"]: r["result"] for r in rows if r["status"] == "ok"}["j4"] == 40
        sent = len(server.attempts)
        again = asyncio.run(run_jobs(teacher(server), jobs(9), score, out))
        assert again.skipped == 6 and again.failed == {"unparseable": 3}
        assert len(server.attempts) == sent + 3                     # only the three unanswered went out again
    assert answered_ids(out) == {f"j{i}" for i in range(9) if i % 3}
    assert latest_rows(out)["j1"]["row"] == 1


def test_max_cost_stops_the_jobs_cleanly(tmp_path):
    out = tmp_path / "scores.jsonl"
    with FakeTeacherServer(lambda body, attempt: Reply("7", completion_tokens=10)) as server:
        judge = LiteLLMTeacher(TeacherOptions(model="openai/judge", api_base=server.url, max_tokens=16, concurrency=2,
                                              input_cost=1000.0, output_cost=1000.0),
                               api_key="sk-test", budget=Budget(cap=0.2))
        result = asyncio.run(run_jobs(judge, jobs(40), score, out))
    assert result.stopped == "stopped_budget" and 0 < result.answered < 40
    assert judge.budget.spent <= 0.2
    assert all(json.loads(json.dumps(r)) for r in read_complete_lines(out))
