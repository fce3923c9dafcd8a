"""Reviewing answers inside generate: --judge and --min-quality reject low-quality answers with the judge's reason;
--strong-teacher re-answers a subset, both answers kept, each teacher's cost booked apart."""

import json

import pytest

import synth
from synth.errors import ConfigError
from synth.files import read_complete_lines
from synth.testing import FakeTeacherServer, Reply, explain_reply


def queries(tmp_path, n=8):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"Explain fact number {i}."}) + "\n" for i in range(n)))
    return path


def script(body, attempt):
    """Teacher "cheap" answers; teacher "strong" answers better; the judge gives 2 to odd facts' cheap answers."""
    prompt = body["messages"][-1]["content"]
    if prompt.startswith("You are grading one answer"):
        weak = "cheap answer" in prompt and any(f"fact number {i}." in prompt for i in (1, 3, 5, 7))
        return Reply(json.dumps({"score": 2 if weak else 5, "reason": "vague" if weak else "clear and correct"}))
    if prompt.startswith("You are rating how demanding"):
        return Reply(json.dumps({"score": 5 if "number 2" in prompt else 2, "reason": "steps"}))
    who = "strong" if body["model"] == "strong" else "cheap"
    return Reply(f"A {who} answer, explained: {explain_reply(body).content}")


def run(tmp_path, server, **settings):
    return synth.generate(queries=str(queries(tmp_path)), out=str(tmp_path / "run"), teacher="openai/cheap",
                          api_base=server.url, input_cost=1.0, output_cost=2.0, **settings)


def test_min_quality_rejects_low_scored_answers_with_the_judges_reason(tmp_path):
    with FakeTeacherServer(script) as server:
        result = run(tmp_path, server, judge="openai/cheap", min_quality=4)
    assert result.records == 4
    low = [r for r in read_complete_lines(tmp_path / "run" / "rejected.jsonl") if r["reason"] == "low_quality"]
    assert len(low) == 4 and all(r["detail"] == "vague" and r["score"] == 2 for r in low)
    scores = [r for r in read_complete_lines(tmp_path / "run" / "scores.jsonl")]
    assert len(scores) == 8 and all(r["status"] == "ok" and r["rubric"] == "quality" for r in scores)
    assert synth.load_scores(tmp_path / "run")                          # synth select and report read them the same
    assert all(r["provenance"]["judge"]["quality"]["score"] == 5 for r in synth.load_records(tmp_path / "run"))
    assert result.manifest["usage"]["judge"]["requests"] == 8


def test_a_strong_teacher_re_answers_the_low_quality_ones(tmp_path):
    with FakeTeacherServer(script) as server:
        result = run(tmp_path, server, judge="openai/cheap", min_quality=4, strong_teacher="openai/strong")
        strong_calls = sum(a.body["model"] == "strong" for a in server.attempts)
    assert result.records == 8 and strong_calls == 4
    redone = [r for r in synth.load_records(tmp_path / "run") if "strong_teacher" in r["provenance"]]
    assert len(redone) == 4
    for record in redone:
        prov = record["provenance"]
        assert record["response"].startswith("A strong answer") and prov["teacher"] == "openai/strong"
        assert prov["strong_teacher"]["cheap_response"].startswith("A cheap answer")
        assert prov["strong_teacher"]["why"] == "judged 2"
    usage = result.manifest["usage"]
    assert usage["strong_teacher"]["requests"] == 4 and usage["judge"]["cost_usd"] > 0   # the strong model is unpriced here
    assert usage["total_cost_usd"] == pytest.approx(usage["cost_usd"] + usage["judge"]["cost_usd"]
                                                    + usage["strong_teacher"]["cost_usd"], abs=1e-6)


@pytest.mark.parametrize("when, expected", [("complex", 1), ("fraction:0.5", None)])
def test_strong_when_complex_or_a_seeded_fraction(tmp_path, when, expected):
    with FakeTeacherServer(script) as server:
        result = run(tmp_path, server, judge="openai/cheap", strong_teacher="openai/strong", strong_when=when)
    redone = [r for r in synth.load_records(tmp_path / "run") if "strong_teacher" in r["provenance"]]
    assert result.records == 8
    if expected is not None:
        assert len(redone) == expected and "number 2" in redone[0]["task"]["instruction"]
    else:
        assert 0 < len(redone) < 8


@pytest.mark.parametrize("settings, message", [
    ({"min_quality": 4}, "--min-quality needs a --judge"),
    ({"strong_teacher": "openai/strong"}, "needs a --judge to decide"),
    ({"strong_teacher": "openai/strong", "strong_when": "fraction:2"}, "the fraction must be in"),
    ({"min_quality": 9, "judge": "openai/cheap"}, "--min-quality must be at most 5"),
])
def test_review_settings_are_checked_before_anything_runs(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        synth.generate(queries=str(queries(tmp_path)), out=str(tmp_path / "run"), teacher="openai/cheap",
                       api_base="http://127.0.0.1:9/v1", **settings)
    assert not (tmp_path / "run").exists()
