"""Crash and resume: SIGKILL at random points and mid-write (query and bootstrap paths), SIGTERM and Ctrl-C,
a full disk. Nothing lost, nothing doubled, nothing paid twice."""

import json
import random
import resource
import signal
import time
from collections import Counter

import pytest

from synth.files import read_complete_lines
from synth.generation.runfolder import RunFolder
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


def line_count(path):
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for_lines(path, more_than, proc, limit=60.0, containing=b""):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and sum(containing in line for line in path.read_bytes().splitlines(True)
                                 if line.endswith(b"\n")) > more_than:
            return
        time.sleep(0.02)


def wait_for_records(run, more_than, proc, limit=60.0):
    wait_for_lines(run / "data.jsonl", more_than, proc, limit)


def test_sigkill_at_random_points_and_mid_write_then_resume(crash_server, tmp_path):
    queries = write_queries(tmp_path / "q.jsonl", QUERIES)
    whole = tmp_path / "whole"
    assert run_synth(synth_args(crash_server, queries, whole, "--concurrency", "8")).returncode == 0

    cut = tmp_path / "cut"
    points = sorted(random.Random(5).sample(range(3, QUERIES - 30), 5))    # records written at each kill
    args = synth_args(crash_server, queries, cut, "--concurrency", "8")
    kills = 0
    for point in points:
        proc = start_synth(args if kills == 0 else ["generate", "--resume", str(cut)])
        wait_for_records(cut, max(point, line_count(cut / "data.jsonl")), proc)
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
    assert kills == 5
    every_line_parses(cut / "data.jsonl")
    assert final_records(cut) == final_records(whole)
    assert set(outcomes(cut).values()) == {1}


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_clean_stop_loses_nothing_and_repays_nothing(tmp_path, stop):
    with FakeTeacherServer(lambda body, attempt: slow_reply(body)) as server:
        queries = write_queries(tmp_path / "q.jsonl", QUERIES)
        run = tmp_path / "run"
        proc = start_synth(synth_args(server, queries, run, "--concurrency", "8"))
        wait_for_records(run, 20, proc)
        proc.send_signal(stop)
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
        lines = [l for l in stderr.splitlines() if l.strip() and not l.startswith(("records", "generate settings:"))]
        assert len(lines) == 1 and "free space" in lines[0] and "--resume" in lines[0], stderr
        written = len(list(read_complete_lines(run / "data.jsonl")))
        assert written < QUERIES
        result = run_synth(["generate", "--resume", str(run)])
        assert result.returncode == 0, result.stderr
    every_line_parses(run / "data.jsonl")
    assert set(outcomes(run).values()) == {1} and len(outcomes(run)) == QUERIES


def stable_records(run):
    return sorted((r["task"]["instruction"], r["instance"]["input"], r["response"])
                  for r in read_complete_lines(run / "data.jsonl"))


def test_sigkill_during_the_bootstrap_pipeline_then_resume(teacher_server, tmp_path):
    """The Self-Instruct path: kill once while a bootstrap prompt is in flight and once among the records.
    The resumed output equals an uninterrupted run, and only requests in flight at a kill are sent twice."""
    scripted = teacher_server.script

    def slow(body, attempt):
        reply = scripted(body, attempt)
        reply.delay = 0.25
        return reply

    teacher_server.script = slow
    settings = ["--teacher", "openai/fake-teacher", "--api-base", teacher_server.url, "--num", "24", "--concurrency", "4"]
    whole = run_synth(["generate", *settings, "--out", str(tmp_path / "whole")])
    assert whole.returncode == 0, whole.stderr
    teacher_server.reset()

    cut = tmp_path / "cut"
    proc = start_synth(["generate", *settings, "--out", str(cut)])
    wait_for_lines(cut / "tasks.jsonl", 1, proc, containing=b'"bootstrap_started"')   # the second bootstrap prompt
    kills = [time.monotonic()]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert RunFolder.existing(cut).load_state().unfinished_bootstraps, "the kill missed the bootstrap prompt"
    proc = start_synth(["generate", "--resume", str(cut)])
    wait_for_records(cut, line_count(cut / "data.jsonl") + 5, proc)
    kills.append(time.monotonic())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before the second kill"
    final = run_synth(["generate", "--resume", str(cut)])
    assert final.returncode == 0, final.stderr

    every_line_parses(cut / "data.jsonl")
    assert stable_records(cut) == stable_records(tmp_path / "whole")
    replies: dict[str, list[float]] = {}
    for a in teacher_server.attempts:
        if a.outcome == "reply":
            replies.setdefault(a.key, []).append(a.at)
    repaid = {key: times[:-1] for key, times in replies.items() if len(times) > 1}
    # A request is sent again only when it was in flight at a kill: it arrived less than its reply's delay
    # (plus a margin for a busy machine) before the kill. Everything answered earlier came from the cache.
    in_flight = [any(kill - 1.5 <= t <= kill for kill in kills) for times in repaid.values() for t in times]
    assert all(in_flight), repaid
    assert len(repaid) <= 4 * len(kills)
