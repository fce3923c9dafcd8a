"""Crash and resume: SIGKILL at random points and mid-write, SIGTERM, a full disk. Nothing lost, nothing doubled."""

import json
import random
import resource
import signal
import time
from collections import Counter

import pytest

from synth.jsonl import read_complete_lines
from synth.testing import FakeTeacherServer, Fault, Reply, explain_reply, fault_mix

from .conftest import child_env, outcomes, run_synth, start_synth, synth_args, write_queries

QUERIES = 120


def slow_reply(body):
    reply = explain_reply(body)
    reply.delay = 0.03
    return reply


FAST_FAULTS = [
    (1.0, lambda: Fault("status", status=503)),
    (1.0, lambda: Fault("status", status=429, headers={"retry-after-ms": "100"})),
    (1.0, lambda: Fault("reset")),
    (1.0, lambda: Reply("cut off", finish_reason=None)),
]


@pytest.fixture
def crash_server():
    with FakeTeacherServer(fault_mix(slow_reply, seed=11, rate=0.15, faults=FAST_FAULTS)) as server:
        yield server


def final_records(run):
    return sorted((r["id"], r["task"]["id"], r["response"]) for r in read_complete_lines(run / "data.jsonl"))


def every_line_parses(path):
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    for line in raw.splitlines():
        json.loads(line)


def wait_for_records(run, more_than, proc, limit=60.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        path = run / "data.jsonl"
        if path.exists() and path.read_bytes().count(b"\n") > more_than:
            return
        time.sleep(0.05)


def test_sigkill_at_random_points_and_mid_write_then_resume(crash_server, tmp_path):
    queries = write_queries(tmp_path / "q.jsonl", QUERIES)
    whole = tmp_path / "whole"
    assert run_synth(synth_args(crash_server, queries, whole, "--concurrency", "8")).returncode == 0

    cut = tmp_path / "cut"
    rng = random.Random(5)
    args = synth_args(crash_server, queries, cut, "--concurrency", "8")
    kills = 0
    for _ in range(5):
        done = (cut / "data.jsonl").read_bytes().count(b"\n") if (cut / "data.jsonl").exists() else 0
        proc = start_synth(args if kills == 0 else ["generate", "--resume", str(cut)])
        wait_for_records(cut, done + rng.randint(1, 15), proc)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    proc = start_synth(["generate", "--resume", str(cut)], env=child_env(SYNTH_TEST_KILL_MID_WRITE="data.jsonl:2"))
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert not (cut / "data.jsonl").read_bytes().endswith(b"\n")       # it really died half-way through a line
    final = run_synth(["generate", "--resume", str(cut)])
    assert final.returncode == 0, final.stderr
    assert kills >= 4
    every_line_parses(cut / "data.jsonl")
    assert final_records(cut) == final_records(whole)
    assert set(outcomes(cut).values()) == {1}


def test_sigterm_loses_nothing_and_repays_nothing(tmp_path):
    with FakeTeacherServer(lambda body, attempt: slow_reply(body)) as server:
        queries = write_queries(tmp_path / "q.jsonl", QUERIES)
        run = tmp_path / "run"
        proc = start_synth(synth_args(server, queries, run, "--concurrency", "8"))
        wait_for_records(run, 20, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 130, stderr
        assert "--resume" in stderr and "Traceback" not in stderr
        stopped_at = len(list(read_complete_lines(run / "data.jsonl")))
        assert stopped_at < QUERIES
        assert run_synth(["generate", "--resume", str(run)]).returncode == 0
        answered = Counter(a.key for a in server.attempts if a.outcome == "reply")
    assert len(answered) == QUERIES and set(answered.values()) == {1}      # no request paid twice
    assert len(list(read_complete_lines(run / "data.jsonl"))) == QUERIES


def _small_disk():
    limit = 48 * 1024
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_full_disk_stops_cleanly_and_resumes(tmp_path):
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        queries = write_queries(tmp_path / "q.jsonl", QUERIES)
        run = tmp_path / "run"
        proc = start_synth(synth_args(server, queries, run, "--concurrency", "8"), preexec_fn=_small_disk)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 5, stderr
        lines = [l for l in stderr.splitlines() if l.strip() and not l.startswith("records")]
        assert len(lines) == 1 and "free space" in lines[0] and "--resume" in lines[0], stderr
        written = len(list(read_complete_lines(run / "data.jsonl")))
        assert written < QUERIES
        result = run_synth(["generate", "--resume", str(run)])
        assert result.returncode == 0, result.stderr
    every_line_parses(run / "data.jsonl")
    assert set(outcomes(run).values()) == {1} and len(outcomes(run)) == QUERIES
