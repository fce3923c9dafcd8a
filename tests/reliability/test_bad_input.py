"""Hostile and malformed input: huge seed lines, injection text in replies, and paths that stay put."""

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synth
from synth.errors import InputFileError
from synth.generation.seeds import load_seeds
from synth.testing import INJECTIONS, FakeTeacherServer, Fault, Reply

from .conftest import run_synth


def test_ten_megabyte_line_is_read(tmp_path):
    path = tmp_path / "big.jsonl"
    huge = "word " * 2_000_000
    path.write_text(json.dumps({"instruction": "Summarize the text below.", "instances": [{"input": huge, "output": "ok"}]}) + "\n")
    [task] = load_seeds(path)
    assert len(task.instances[0]["input"]) == len(huge)


def test_ten_megabyte_broken_line_is_one_line_error(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text('{"instruction": "fine"}\n{"instruction": "' + "x" * 10_000_000 + "\n")
    with pytest.raises(InputFileError, match=r"big\.jsonl:2: is not valid JSON") as info:
        load_seeds(path)
    assert len(str(info.value)) < 300


def test_injection_text_is_data_not_instructions(tmp_path):
    """Replies full of prompt injection, fake keys, ../ paths and URLs are stored verbatim and touch nothing else."""
    def script(body, attempt):
        return Reply("Here is the answer, explained.\n" + "\n".join(INJECTIONS))

    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"id": f"../../escape{i}", "instruction": f"Question {i} about ../etc/passwd?"}) + "\n"
                               for i in range(5)))
    before = {p for p in tmp_path.parent.rglob("*")}
    with FakeTeacherServer(script) as server:
        result = synth.generate(queries=str(queries), out=str(tmp_path / "run"), teacher="openai/fake-teacher",
                                api_base=server.url)
    assert result.records == 5
    created = {p for p in tmp_path.parent.rglob("*")} - before
    assert created and all(p.resolve().is_relative_to((tmp_path / "run").resolve()) for p in created)
    records = synth.load_records(tmp_path / "run")
    assert all(r["response"].endswith(INJECTIONS[-1]) for r in records)
    assert {r["task"]["id"] for r in records} == {f"../../escape{i}" for i in range(5)}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_seed_loader_never_crashes_on_any_bytes(tmp_path, raw):
    path = tmp_path / "any.jsonl"
    path.write_bytes(raw)
    try:
        tasks = load_seeds(path)
    except InputFileError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert tasks and all(t.instruction for t in tasks)


@pytest.mark.parametrize("fault, reason", [
    (Fault("status", status=401, error_code="invalid_api_key"), "401"),
    (Fault("status", status=429, error_type="insufficient_quota", error_code="insufficient_quota",
           message="You exceeded your current quota"), "no quota"),
])
def test_fatal_teacher_errors_stop_the_run_at_once(tmp_path, fault, reason):
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"instruction": f"Question number {i}?"}) + "\n" for i in range(200)))
    with FakeTeacherServer(lambda body, attempt: fault) as server:
        result = run_synth(["generate", "--queries", str(queries), "--teacher", "openai/fake-teacher",
                            "--api-base", server.url, "--out", str(tmp_path / "run"), "--concurrency", "4"])
        attempts = server.attempts
    assert result.returncode == 4
    lines = [l for l in result.stderr.splitlines() if l.strip() and not l.startswith(("records", "generate settings:"))]
    assert len(lines) == 1 and reason in lines[0] and "Traceback" not in result.stderr
    assert len(attempts) <= 4                                   # the requests in flight, and nothing after
    assert max(a.attempt_no for a in attempts) == 1             # none of them retried
