"""Short soak (the full 10,000-request version is `make soak`): every request ends exactly once."""

from collections import Counter

import synth
from synth.files import read_complete_lines
from synth.records import schema_errors
from synth.testing import CUT_TEXT, LENGTH_TEXT, REJECTED_FINISH, expected_rejections
from synth.testing.soak import replace_section

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
    assert not any(LENGTH_TEXT in r["response"] or CUT_TEXT in r["response"] for r in records)
    # A length or content_filter reply is an answer, not a fault to retry: its request ends rejected with that
    # reason, and these are the only rejections.
    attempts = faulty_server.attempts
    rejected = Counter(r["reason"] for r in read_complete_lines(tmp_path / "run" / "rejected.jsonl")
                       if r["kind"] == "rejected")
    assert rejected == expected_rejections(attempts) and set(rejected) == set(REJECTED_FINISH.values())
    assert result.manifest["counts"]["rejected"] == dict(rejected)
    failed = sum(result.manifest["counts"]["failed"].values())
    assert failed <= REQUESTS * 0.001
    faulted = sum(a.faulted for a in attempts)
    assert faulted > 0.15 * len(attempts)                   # the faults really happened
    assert len(attempts) <= 1.5 * REQUESTS
    assert result.status == "completed" and result.records == len(records)
    assert result.records + sum(rejected.values()) + failed == REQUESTS


RESULTS = """# Results

## Generation throughput (2026-11-20)

| a | b |

## Reliability soak (2026-11-19)

old figures

## Reliability soak (2026-11-20)

older duplicate

## Novelty gate

kept
"""


def test_a_results_section_is_replaced_not_appended():
    new = "## Reliability soak (2026-11-21)\n\nnew figures\n"
    once = replace_section(RESULTS, "Reliability soak", new)
    assert once.count("## Reliability soak") == 1 and "new figures" in once and "old" not in once
    assert once.index("## Generation throughput") < once.index("## Reliability soak") < once.index("## Novelty gate")
    assert "| a | b |" in once and once.endswith("kept\n")
    assert replace_section(once, "Reliability soak", new) == once                  # running it again changes nothing
    assert replace_section("# Results\n", "Reliability soak", new) == "# Results\n\n" + new
    assert replace_section(RESULTS, "Reliability", new).count("## Reliability soak") == 3   # the whole title only
