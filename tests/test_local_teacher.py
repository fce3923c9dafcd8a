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
