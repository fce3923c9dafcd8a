"""Settings, caches, run folders and endpoints that are wrong: one-line errors that say what to do, and no folder
left half-made."""

import asyncio
import json
import re
import socket

import pytest

import synth
from synth.teacher.cache import RequestCache
from synth.generation.config import GenerateConfig
from synth.errors import ConfigError, MissingKeyError, RunFolderError, TeacherError, TransientTeacherError
from synth.teacher.retry import classify
from synth.settings import load_config_file
from synth.teacher.client import LiteLLMTeacher, TeacherOptions, check_api_key
from synth.testing import FakeTeacherServer, explain_reply
from synth.training.config import TrainConfig

from test_cli import assert_one_line_error, synth_cli


@pytest.mark.parametrize("values, message", [
    ({"num": "ten"}, "num must be an integer or null, not \"ten\""),
    ({"concurrency": None}, 'concurrency must be an integer or "auto", not null'),
    ({"timeout": True}, "timeout must be a finite number, not true"),
    ({"blacklist": ["image", 3]}, "blacklist must be a list of strings"),
    ({"teacher": ["gpt-4o"]}, "teacher must be a string"),
])
def test_a_setting_of_the_wrong_type_is_named(values, message):
    with pytest.raises(ConfigError, match="^run.json: " + message.replace("(", r"\(")):
        GenerateConfig.from_dict(values, "run.json")


def test_settings_of_the_right_type_pass_and_integers_serve_as_floats():
    config = GenerateConfig.from_dict({"timeout": 5, "num": None, "max_cost": 2, "blacklist": []})
    assert config.timeout == 5.0 and isinstance(config.timeout, float) and config.max_cost == 2.0
    assert TrainConfig.from_dict(TrainConfig(data="d").to_dict()) == TrainConfig(data="d")
    with pytest.raises(ConfigError, match="epochs must be an integer"):
        TrainConfig.from_dict({"epochs": "3"})


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(b'{"teacher": "caf\xe9"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config_file(path)
    assert_one_line_error(synth_cli("generate", "--config", str(path)), "c.json", "not UTF-8")


def test_a_cache_path_that_is_no_database_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("not a database, just text that is long enough to have a header" * 4)
    for path in (tmp_path, tmp_path / "notes.txt"):
        with pytest.raises(ConfigError, match="cannot be used as the request cache"):
            RequestCache(path)


def test_a_model_without_a_provider_is_named_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="provider/model"):
        check_api_key("no-such-model-xyz", None)
    result = synth_cli("generate", "--teacher", "foo-bar-model", "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "foo-bar-model", "openai/NAME")
    assert result.returncode == 2 and not (tmp_path / "run").exists()


def test_the_wire_client_without_an_address_or_with_an_unknown_name_is_one_line(tmp_path):
    result = synth_cli("generate", "--teacher", "openai/gpt-4o", "--client", "openai", "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "--client openai", "--api-base")
    assert not (tmp_path / "run").exists()
    result = synth_cli("generate", "--client", "vllm", "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "--client", "litellm")
    assert not (tmp_path / "run").exists()


def test_a_missing_verifier_key_leaves_no_folder_behind(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingKeyError):
        synth.generate(out=str(tmp_path / "run"), teacher="openai/x", api_base="http://127.0.0.1:9/v1",
                       verifier="gpt-4o-mini")
    assert not (tmp_path / "run").exists()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_connection_is_labelled_as_such():
    teacher = LiteLLMTeacher(TeacherOptions(model="openai/x", api_base=f"http://127.0.0.1:{closed_port()}/v1",
                                            max_retries=0, timeout=3), api_key="sk-test", check_key=False)
    with pytest.raises(TransientTeacherError) as caught:
        asyncio.run(teacher.complete([{"role": "user", "content": "hi"}]))
    assert caught.value.reason == "unreachable" and "connection refused" in str(caught.value)
    assert classify(ConnectionResetError("reset")).reason == "connection"     # a reset is not a wrong address


def test_a_teacher_that_never_answers_stops_the_run_at_once(tmp_path):
    """A wrong --api-base is not an outage: the run stops in seconds with exit 4, not after --max-outage."""
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"instruction": f"Name a colour, {i}."}) + "\n" for i in range(12)))
    result = synth_cli("generate", "--queries", str(queries), "--teacher", "openai/x", "--api-base",
                       f"http://127.0.0.1:{closed_port()}/v1", "--max-retries", "1", "--out", str(tmp_path / "run"))
    assert result.returncode == 4
    assert "nothing answers at http://127.0.0.1:" in result.stderr and "--resume" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_teacher_that_answered_once_gets_the_outage_treatment_instead():
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        teacher = LiteLLMTeacher(TeacherOptions(model="openai/x", api_base=server.url, max_retries=0, timeout=3,
                                                max_outage=1.0), api_key="sk-test", check_key=False)
        asyncio.run(teacher.complete([{"role": "user", "content": "hi"}]))
    reasons = []
    for n in range(teacher.breaker.threshold + 2):         # the server is gone now: refused, but it was there
        with pytest.raises(TeacherError) as caught:
            asyncio.run(teacher.complete([{"role": "user", "content": f"again {n}"}]))
        reasons.append(caught.value.reason)
    assert set(reasons) <= {"unreachable", "outage"} and "outage" in reasons     # paused, then --max-outage


def test_resume_refuses_another_out_and_a_damaged_run_folder(tmp_path):
    queries = tmp_path / "q.jsonl"
    queries.write_text(json.dumps({"instruction": "Name a colour."}) + "\n")
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        run = tmp_path / "run"
        synth.generate(out=str(run), queries=str(queries), teacher="openai/x", api_base=server.url)
        with pytest.raises(ConfigError, match="drop --out"):
            synth.generate(resume=str(run), out=str(tmp_path / "elsewhere"))
        config_before = (run / "config.json").read_text()
        with open(run / "tasks.jsonl", "a") as fh:
            fh.write('{"status": "accepted"}\n5\n')
        with pytest.raises(RunFolderError, match=r"tasks.jsonl:2: its 'task' is null, not an object, so synth did not write it"):
            synth.generate(resume=str(run), num=5)
        assert (run / "config.json").read_text() == config_before        # nothing rewritten on the way out


def test_a_stalled_run_names_what_went_wrong_and_what_to_change(tmp_path):
    from synth.testing import Reply

    with FakeTeacherServer(lambda body, attempt: Reply("1. Write a poem about", finish_reason="length")) as server:
        result = synth.generate(out=str(tmp_path / "run"), teacher="openai/x", api_base=server.url, num=4,
                                max_idle_rounds=3, max_retries=0)
    assert result.status == "stalled"
    assert re.search(r"most often finish_length x\d+\)", result.message) and "raise --max-tokens" in result.message
