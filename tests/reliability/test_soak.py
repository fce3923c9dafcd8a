"""Short soak (the full 10,000-request version is `make soak`): every request ends exactly once."""

import synth
from synth.jsonl import read_complete_lines
from synth.records import schema_errors

from .conftest import outcomes, write_queries

REQUESTS = 300


def test_short_soak_under_thirty_percent_faults(faulty_server, tmp_path):
    queries = write_queries(tmp_path / "q.jsonl", REQUESTS)
    result = synth.generate(queries=str(queries), out=str(tmp_path / "run"), teacher="openai/fake-teacher",
                            api_base=faulty_server.url, concurrency=32, timeout=5.0, max_retries=5)
    ended = outcomes(tmp_path / "run")
    assert set(ended) == {f"q{i:05d}" for i in range(REQUESTS)}
    assert set(ended.values()) == {1}                        # each request ended exactly once
    records = list(read_complete_lines(tmp_path / "run" / "data.jsonl"))
    assert all(r["provenance"]["finish_reason"] == "stop" and not schema_errors(r) for r in records)
    failed = sum(result.manifest["counts"]["failed"].values())
    assert failed <= REQUESTS * 0.001
    attempts = len(faulty_server.attempts)
    faulted = sum(a.outcome != "reply" for a in faulty_server.attempts)
    assert faulted > 0.15 * attempts                        # the faults really happened
    assert attempts <= 1.5 * REQUESTS
    assert result.status == "completed" and result.records == len(records)
