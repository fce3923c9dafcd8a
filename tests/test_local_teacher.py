"""End to end with the real embedded teacher: SmolLM2-135M under llama.cpp's server, over litellm's HTTP path."""

import os
import signal
import subprocess
import sys
import time

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


def test_the_wire_client_answers_queries_with_the_embedded_teacher(tmp_path):
    """--client openai on the real model: llama.cpp's server speaks the same wire format as vLLM's."""
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "q1", "instruction": "Name a primary colour."}\n'
                       '{"id": "q2", "instruction": "Why is the sky blue?"}\n')
    out = subprocess.run([sys.executable, "-m", "synth", "generate", "--teacher", "local", "--client", "openai",
                          "--queries", str(queries), "--max-tokens", "200", "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    records = synth.load_records(tmp_path / "run")
    rejected = tmp_path / "run" / "rejected.jsonl"
    assert len(records) + (len(rejected.read_text().splitlines()) if rejected.exists() else 0) >= 2
    for record in records:
        assert schema_errors(record) == [] and record["response"].strip()
        assert record["provenance"]["teacher"] == "openai/smollm2-135m-instruct"
        assert record["provenance"]["usage"]["completion_tokens"] > 0


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


def test_the_server_loads_the_model_without_extra_buffer_types():
    """llama.cpp's AMX buffer type crashes on the first request on virtual machines with AMX; synth's launcher
    turns the extra buffer types off before llama_cpp.server loads the model."""
    code = ("import llama_cpp.llama_cpp as b\n"
            "before = b.llama_model_default_params().use_extra_bufts\n"
            "from synth.teacher.llama_server import _without_extra_buffer_types\n"
            "_without_extra_buffer_types()\n"
            "print(before, b.llama_model_default_params().use_extra_bufts)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["True", "False"]


def test_a_teacher_process_that_dies_stops_the_run_at_once_with_one_line(tmp_path):
    """Killed under a run, the embedded server is named as dead right away (not waited for through --max-outage,
    which is an hour here: the subprocess timeout would fail the test first); nothing written is lost."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "synth", "generate", "--teacher", "local", "--num", "40",
                             "--max-tokens", "200", "--max-outage", "3600", "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        server = _llama_child(proc.pid)
        deadline = time.monotonic() + 240
        while not (run / "data.jsonl").is_file() or not (run / "data.jsonl").stat().st_size:
            assert proc.poll() is None and time.monotonic() < deadline, "the run never wrote a record"
            time.sleep(0.5)
        server.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    written = len(synth.load_records(run))
    assert proc.returncode != 0 and written >= 1
    assert "killed by SIGKILL" in err and "--resume" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "killed by SIGKILL" in line]) == 1


def _llama_child(pid: int):
    import psutil

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for child in psutil.Process(pid).children(recursive=True):
            if "synth.teacher.llama_server" in " ".join(child.cmdline()):
                return child
        time.sleep(0.2)
    raise AssertionError("the embedded teacher's server never started")
