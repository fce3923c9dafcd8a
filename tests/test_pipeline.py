"""The whole generate pipeline against the scripted teacher: records, rejections, manifest, resume."""

import json
from collections import Counter

import pytest

import synth
from synth.errors import RunFolderError
from synth.files import read_complete_lines
from synth.records import schema_errors


def run(server, out, **overrides):
    settings = dict(out=str(out), teacher="openai/fake-teacher", api_base=server.url, num=8, concurrency=8,
                    max_retries=1, timeout=10.0)
    settings.update(overrides)
    return synth.generate(**settings)


def test_generate_writes_valid_records_with_provenance(teacher_server, tmp_path):
    result = run(teacher_server, tmp_path / "run")
    assert result.status == "completed"
    records = list(read_complete_lines(tmp_path / "run" / "data.jsonl"))
    assert len(records) == result.records >= 8
    seeds = {t.id for t in synth.load_seeds()}
    for record in records:
        assert schema_errors(record) == []
        p = record["provenance"]
        assert p["teacher"] == "openai/fake-teacher" and p["finish_reason"] == "stop"
        assert len(p["prompt_pool_ids"]) == 8 and set(p["prompt_pool_ids"]) & seeds
        assert record["system_message"]["id"] == p["system_message_id"]
        assert record["response"].startswith("Step 1")
        assert record["task"]["origin"] == "machine"
    assert len({r["id"] for r in records}) == len(records)


def test_every_rejection_has_a_reason_and_the_manifest_counts_them(teacher_server, tmp_path):
    result = run(teacher_server, tmp_path / "run")
    rejected = list(read_complete_lines(tmp_path / "run" / "rejected.jsonl"))
    reasons = Counter(r["reason"] for r in rejected)
    assert reasons["blacklisted_keyword:picture"] >= 1 and reasons["too_short"] >= 1
    assert all(r["text"] for r in rejected if r["stage"] in ("filter", "novelty"))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest == result.manifest
    assert manifest["counts"]["rejected"] == dict(reasons)
    assert manifest["counts"]["records"] == result.records
    assert manifest["usage"]["calls"] >= manifest["counts"]["records"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["num"] == 8 and config["teacher"] == "openai/fake-teacher"


def test_existing_folder_is_refused_without_resume_or_overwrite(teacher_server, tmp_path):
    run(teacher_server, tmp_path / "run", num=2)
    with pytest.raises(RunFolderError, match="--resume"):
        run(teacher_server, tmp_path / "run", num=2)
    assert run(teacher_server, tmp_path / "run", num=2, overwrite=True).status == "completed"


def test_resume_extends_a_run_without_duplicates_or_repaying(teacher_server, tmp_path):
    out = tmp_path / "run"
    first = run(teacher_server, out, num=4)
    paid_before = len(teacher_server.attempts)
    resumed = synth.generate(resume=out, num=12)
    records = list(read_complete_lines(out / "data.jsonl"))
    assert resumed.records == len(records) >= 12 > first.records
    assert len({r["id"] for r in records}) == len(records)
    assert resumed.manifest["sessions"] == 2
    # Resuming a finished run asks the teacher nothing new.
    attempts = len(teacher_server.attempts)
    assert paid_before < attempts
    again = synth.generate(resume=out)
    assert again.records == resumed.records and len(teacher_server.attempts) == attempts


def _timestamp(row):
    return row.get("at") or row.get("created_at") or row["provenance"]["created_at"]


def crash_at(folder, moment):
    """Leave each JSONL file as a kill at `moment` would: the lines written by then, plus a cut line."""
    for name in ("tasks.jsonl", "data.jsonl", "rejected.jsonl"):
        rows = [r for r in read_complete_lines(folder / name) if _timestamp(r) <= moment]
        text = "".join(json.dumps(r) + "\n" for r in rows)
        (folder / name).write_text(text + '{"id": "half-writ')
    (folder / "manifest.json").unlink()


@pytest.mark.parametrize("fraction", [0.3, 0.7])
def test_a_killed_run_resumes_with_nothing_lost_or_doubled(teacher_server, tmp_path, fraction):
    out = tmp_path / "run"
    run(teacher_server, out, num=10, concurrency=2)
    paid = len(teacher_server.attempts)
    records = list(read_complete_lines(out / "data.jsonl"))
    moment = _timestamp(records[int(len(records) * fraction)])
    crash_at(out, moment)
    kept = {r["id"] for r in read_complete_lines(out / "data.jsonl")}
    assert 0 < len(kept) < len(records)
    result = synth.generate(resume=out)
    after = [r["id"] for r in read_complete_lines(out / "data.jsonl")]
    assert len(after) == len(set(after)) == result.records >= 10
    assert kept <= set(after)
    # Everything answered before the kill comes back from the cache: the resume pays for less than the first run.
    assert len(teacher_server.attempts) - paid < paid
    tasks = [r["status"] for r in read_complete_lines(out / "tasks.jsonl")]
    assert tasks.count("bootstrap_started") == tasks.count("bootstrap_done")


def test_resuming_a_finished_run_with_a_cut_tail_sends_nothing(teacher_server, tmp_path):
    out = tmp_path / "run"
    run(teacher_server, out, num=6)
    before = sorted(r["id"] for r in read_complete_lines(out / "data.jsonl"))
    with open(out / "data.jsonl", "a") as fh:
        fh.write('{"id": "rec-cut')
    paid = len(teacher_server.attempts)
    synth.generate(resume=out)
    assert sorted(r["id"] for r in read_complete_lines(out / "data.jsonl")) == before
    assert len(teacher_server.attempts) == paid


def test_resume_does_not_re_embed_the_pool(teacher_server, tmp_path, monkeypatch):
    from synth.gate.embeddings import Embedder

    out = tmp_path / "run"
    run(teacher_server, out, num=4)
    assert (out / "gate").is_dir()
    encoded = []
    original = Embedder.encode
    monkeypatch.setattr(Embedder, "encode", lambda self, texts: encoded.append(len(texts)) or original(self, texts))
    synth.generate(resume=out)                    # finished: nothing to add, nothing to embed
    assert sum(encoded) == 0


def test_a_reply_cut_short_is_retried_and_never_saved(tmp_path):
    from synth.testing import FakeTeacherServer, Reply

    cut = "Step 1: this reply stops in the mid"
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"instruction": f"Explain fact number {i} about tides."}) + "\n" for i in range(6)))

    def script(body, attempt):
        return Reply(cut, finish_reason=None) if attempt == 1 else Reply(f"The whole answer, take {attempt}.")

    with FakeTeacherServer(script) as server:
        result = synth.generate(queries=str(queries), out=str(tmp_path / "run"), teacher="openai/fake-teacher",
                                api_base=server.url, max_retries=1)
        per_request = Counter(a.key for a in server.attempts)
    assert result.records == 6 and set(per_request.values()) == {2}
    records = synth.load_records(tmp_path / "run")
    assert {r["response"] for r in records} == {"The whole answer, take 2."}
    assert all(r["provenance"]["finish_reason"] == "stop" for r in records)
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert cut.encode() not in path.read_bytes(), path


def test_the_verifier_is_booked_in_the_manifest_beside_the_teacher(tmp_path):
    """--verifier calls are paid for too: the manifest shows them apart, and the total includes them."""
    from synth.testing import FakeTeacherServer, Reply

    from conftest import pipeline_script

    def script(body, attempt):
        if "Task A:" in body["messages"][-1]["content"]:
            return Reply("no", prompt_tokens=90, completion_tokens=1)
        return pipeline_script(body, attempt)

    with FakeTeacherServer(script) as server:
        result = run(server, tmp_path / "run", verifier="openai/fake-teacher", recall_threshold=0.3,
                     input_cost=1.0, output_cost=2.0)
        asked = sum("Task A:" in a.body["messages"][-1]["content"] for a in server.attempts)
    usage = result.manifest["usage"]
    assert result.status == "completed" and asked > 0
    assert usage["verifier"]["requests"] == asked and usage["verifier"]["prompt_tokens"] == 90 * asked
    assert usage["verifier"]["cost_usd"] == pytest.approx(asked * (90 * 1.0 + 1 * 2.0) / 1e6, abs=1e-6)
    assert usage["total_cost_usd"] == pytest.approx(usage["cost_usd"] + usage["verifier"]["cost_usd"], abs=1e-6)
    stages = Counter(t["novelty"]["stage"] for t in read_complete_lines(tmp_path / "run" / "tasks.jsonl") if "novelty" in t)
    assert stages["llm_verifier"] >= 1


def test_the_fast_schema_check_never_passes_a_record_jsonschema_rejects(teacher_server, tmp_path):
    """schema_errors() asks a compiled copy of the schema first; on every record it must agree with jsonschema's
    own verdict, so a fault cannot slip through the fast path."""
    import copy
    import random

    from synth.records import _fast_check, _validator

    run(teacher_server, tmp_path / "run", num=4)
    record = next(read_complete_lines(tmp_path / "run" / "data.jsonl"))
    rng = random.Random(7)
    wrong = [None, True, 1, -1, 2.5, "", "x", [], {}, "2026-13-40T99:00:00Z", "rec-XYZ"]

    def paths(node, prefix=()):
        if isinstance(node, dict):
            for key, value in node.items():
                yield prefix + (key,)
                yield from paths(value, prefix + (key,))

    every = list(paths(record))
    verdicts = {True: 0, False: 0}
    for _ in range(600):
        mutant = copy.deepcopy(record)
        *parent, key = rng.choice(every)
        holder = mutant
        for step in parent:
            holder = holder[step]
        if rng.random() < 0.25:
            del holder[key]
        elif rng.random() < 0.15:
            holder[key + "_extra"] = 1
        else:
            holder[key] = rng.choice(wrong)
        slow_valid = not list(_validator().iter_errors(mutant))
        try:
            _fast_check()(mutant)
            fast_valid = True
        except Exception:
            fast_valid = False
        assert not (fast_valid and not slow_valid), (parent, key, mutant)
        assert (schema_errors(mutant) == []) == slow_valid
        verdicts[slow_valid] += 1
    assert verdicts[False] > 300 and verdicts[True] > 0     # both kinds of record were tried
