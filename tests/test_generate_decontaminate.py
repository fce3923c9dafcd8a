"""`synth generate --decontaminate`: candidates that copy a benchmark item are rejected as they are made, with the
benchmark and item named; the index is built once into the run folder and reused on --resume."""

import json

import synth
from synth.files import read_complete_lines
from synth.testing import FakeTeacherServer

from conftest import _FORMS, _TOPICS, pipeline_script


def test_contaminated_candidates_are_rejected_at_the_gate(tmp_path):
    bench = tmp_path / "my_eval.jsonl"
    items = [_FORMS[0].format(t=topic) for topic in _TOPICS] + [_FORMS[2].format(t=topic) for topic in _TOPICS]
    bench.write_text("".join(json.dumps({"id": f"e{i}", "question": q}) + "\n" for i, q in enumerate(items)))
    run = tmp_path / "run"
    with FakeTeacherServer(pipeline_script) as server:
        result = synth.generate(out=str(run), teacher="openai/fake-teacher", api_base=server.url, num=8,
                                concurrency=4, decontaminate=[str(bench)])
        assert result.status == "completed"
        rejected = [r for r in read_complete_lines(run / "rejected.jsonl") if r["stage"] == "decontaminate"]
        assert rejected and all(r["reason"] == "contaminated:my_eval" for r in rejected)
        assert all(r["contamination"]["item_id"] in {f"e{i}" for i in range(len(items))} for r in rejected)
        accepted = {r["task"]["instruction"] for r in read_complete_lines(run / "tasks.jsonl")
                    if r.get("status") == "accepted"}
        assert not accepted & set(items)
        assert (run / "decontam").is_dir() and json.loads((run / "decontamination.json").read_text())["checked"]
        bench.unlink()                               # the pinned copy in the run folder serves the resume
        again = synth.generate(resume=str(run), num=12)
    assert again.status == "completed" and again.records >= 12
