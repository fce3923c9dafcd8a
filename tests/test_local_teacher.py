"""End to end with the real embedded teacher: SmolLM2-135M under llama.cpp's server, over litellm's HTTP path."""

import pytest

import synth
from synth.teacher.local import LocalTeacherServer, bundled_gguf
from synth.records import schema_errors

pytestmark = pytest.mark.slow


def test_bundled_gguf_ships_with_the_package():
    path = bundled_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def test_local_teacher_makes_valid_records(tmp_path):
    result = synth.generate(out=str(tmp_path / "run"), teacher="local", num=3, instances_per_task=1, max_tokens=300)
    assert result.status == "completed"
    records = synth.load_records(tmp_path / "run")
    assert len(records) >= 3
    for record in records:
        assert schema_errors(record) == []
        assert record["provenance"]["teacher"] == "openai/smollm2-135m-instruct"
        assert record["response"].strip()
        assert record["system_message"]["text"]


def test_server_stops_with_its_context():
    with LocalTeacherServer() as server:
        process = server._proc
        assert server.api_base.startswith("http://127.0.0.1:")
    assert process.poll() is not None


def test_magpie_on_the_embedded_teacher_writes_and_answers_its_own_queries(tmp_path):
    """The GGUF's own chat template gives the user-turn prefix; llama.cpp's /v1/completions samples a query from it.
    A 135M model writes weak queries, so the check is that the path is real, not that they are good."""
    result = synth.generate(out=str(tmp_path / "run"), teacher="local", method="magpie", num=1, max_tokens=160,
                            temperature=1.0, max_idle_rounds=6)
    asked = [r for r in synth.formats.iter_rows(tmp_path / "run" / "tasks.jsonl") if r.data.get("status") == "accepted"]
    rejected = list(synth.formats.iter_rows(tmp_path / "run" / "rejected.jsonl")) if (tmp_path / "run" / "rejected.jsonl").exists() else []
    assert asked or any(r.data["stage"] == "magpie" for r in rejected)          # the model was asked, and answered
    if result.records:
        record = synth.load_records(tmp_path / "run")[0]
        assert record["task"]["origin"] == "magpie" and schema_errors(record) == []
