"""The hostile probe's findings: money, lost queries, stuck runs and hangs, each reproduced against the scripted
loopback server or a damaged file."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import synth
from synth.errors import ConfigError, RunFolderError, TeacherOutageError
from synth.files import read_complete_lines
from synth.testing import FakeTeacherServer, Fault, Reply, explain_reply

from .conftest import run_synth

TEACHER = "openai/fake-teacher"


def write_queries(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def colours(tmp_path, n=3):
    return write_queries(tmp_path / "q.jsonl", [{"instruction": f"Name a colour, number {i}."} for i in range(n)])


def lines(stderr: str) -> list[str]:
    return [l for l in stderr.splitlines() if l.strip() and not l.startswith(("records", "generate settings:"))]


# ---- money --------------------------------------------------------------------------------------------

def test_max_cost_holds_for_prompts_in_chinese(tmp_path):
    """A characters-divided-by-three estimate undercounts CJK text threefold; the byte bound never undercounts."""
    text = "数据质量比数量更重要。" * 2000                               # 22,000 characters, 66,000 bytes
    queries = write_queries(tmp_path / "q.jsonl", [{"instruction": f"总结第{i}段：", "input": text} for i in range(10)])

    def bill_by_characters(body, attempt):          # one token per character, as CJK tokenizers roughly do
        prompt = sum(len(m["content"]) for m in body["messages"])
        return Reply("总结：质量更重要。", prompt_tokens=prompt, completion_tokens=10)

    with FakeTeacherServer(bill_by_characters) as server:
        result = synth.generate(queries=str(queries), out=str(tmp_path / "run"), teacher=TEACHER, api_base=server.url,
                                max_cost=0.5, input_cost=10.0, output_cost=1.0)
        billed = sum(a.usage["prompt_tokens"] * 10 / 1e6 + a.usage["completion_tokens"] / 1e6
                     for a in server.attempts if a.usage)
    assert result.status == "stopped_budget" and billed <= 0.5


@pytest.mark.parametrize("args, message", [
    (["--output-cost", "nan", "--input-cost", "1"], "--output-cost must be a finite number, not nan"),
    (["--max-cost", "nan"], "--max-cost must be a finite number, not nan"),
    (["--temperature", "nan"], "--temperature must be a finite number, not nan"),
    (["--api-base", "notaurl"], "--api-base must be an http:// or https:// URL"),
    (["--concurrency", "100000"], "--concurrency must be at most 4096"),
])
def test_settings_that_can_never_work_are_user_errors_at_once(tmp_path, args, message):
    started = time.monotonic()
    result = run_synth(["generate", "--queries", str(colours(tmp_path)), "--teacher", TEACHER,
                        "--api-base", "http://127.0.0.1:9/v1", *args, "--out", str(tmp_path / "run")])
    assert result.returncode == 2 and lines(result.stderr) == [lines(result.stderr)[0]]
    assert message in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30 and not (tmp_path / "run").exists()


def test_every_bad_setting_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        synth.GenerateConfig.from_dict({"prompt_seed_tasks": -1, "top_p": 5, "temperature": -2,
                                        "max_idle_rounds": 0}).validate()
    message = str(caught.value)
    for part in ("--prompt-seed-tasks must be at least 0", "--top-p must be at most 1", "--temperature must be at "
                 "least 0", "--max-idle-rounds must be at least 1"):
        assert part in message


def test_a_nan_price_in_a_config_file_is_refused_before_any_request(tmp_path):
    config = tmp_path / "c.json"
    config.write_text('{"input_cost": 1000, "output_cost": NaN, "max_cost": 0.01}')
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        result = run_synth(["generate", "--config", str(config), "--queries", str(colours(tmp_path)), "--teacher",
                            TEACHER, "--api-base", server.url, "--out", str(tmp_path / "run")])
        assert server.attempts == []
    assert result.returncode == 2 and "NaN" in result.stderr and "Traceback" not in result.stderr


# ---- lost queries -------------------------------------------------------------------------------------

def test_a_query_keeps_its_input_and_every_instance_is_answered(tmp_path):
    queries = write_queries(tmp_path / "q.jsonl", [
        {"instruction": "Summarize the following article.", "input": "The council voted to plant 400 oak trees."},
        {"id": "sort", "instruction": "Sort the list.", "instances": [
            {"input": "3 1 2", "output": "1 2 3"}, {"input": "b a", "output": "a b"}, {"input": "9 8", "output": "8 9"}]},
    ])
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        result = synth.generate(queries=str(queries), out=str(tmp_path / "run"), teacher=TEACHER, api_base=server.url)
        sent = [a.body["messages"][-1]["content"] for a in server.attempts]
    assert result.records == 4 and result.status == "completed"
    assert any("400 oak trees" in prompt for prompt in sent)
    records = synth.load_records(tmp_path / "run")
    assert sorted(r["instance"]["input"] for r in records) == sorted(
        ["The council voted to plant 400 oak trees.", "3 1 2", "b a", "9 8"])
    assert {r["instance"]["reference_output"] for r in records if r["task"]["id"] == "sort"} == {"1 2 3", "a b", "8 9"}


def test_colliding_query_ids_lose_nothing(tmp_path):
    queries = write_queries(tmp_path / "q.jsonl", [{"id": i, "instruction": f"Question {n}?"}
                                                   for n, i in enumerate(["x", "x", "x#1"])])
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        result = synth.generate(queries=str(queries), out=str(tmp_path / "run"), teacher=TEACHER, api_base=server.url)
    assert result.records == 3
    assert sorted(r["task"]["id"] for r in synth.load_records(tmp_path / "run")) == ["x", "x#1", "x#2"]


def test_failed_queries_are_not_completed_and_resume_sends_them_again(tmp_path):
    slow = {"on": True}

    def script(body, attempt):
        return Reply(explain_reply(body).content, delay=4.0 if slow["on"] else 0.0)

    with FakeTeacherServer(script) as server:
        first = run_synth(["generate", "--queries", str(colours(tmp_path)), "--teacher", TEACHER, "--api-base",
                           server.url, "--timeout", "1", "--max-retries", "0", "--out", str(tmp_path / "run")])
        assert first.returncode == 6, first.stderr
        assert "3 request(s) failed for good" in first.stderr and "--resume" in first.stderr
        slow["on"] = False
        result = synth.generate(resume=str(tmp_path / "run"), timeout=60)
    assert result.status == "completed" and result.records == 3
    assert result.manifest["counts"]["failed"] == {}
    kinds = [r["kind"] for r in read_complete_lines(tmp_path / "run" / "rejected.jsonl")]
    assert kinds.count("failed") == 3 and kinds.count("retried") == 3


# ---- stuck runs and hangs -----------------------------------------------------------------------------

def test_half_an_emoji_is_repaired_and_never_sticks_a_run(tmp_path):
    queries = write_queries(tmp_path / "q.jsonl", [{"instruction": "Smile \ud83d please, number %d." % i}
                                                   for i in range(3)])
    with FakeTeacherServer(lambda body, attempt: Reply("Here you go: \ud83d and \ud83d\ude00.")) as server:
        result = synth.generate(queries=str(queries), out=str(tmp_path / "run"), teacher=TEACHER, api_base=server.url)
        assert result.records == 3
        again = synth.generate(resume=str(tmp_path / "run"), num=3)
    assert again.status == "completed"
    records = synth.load_records(tmp_path / "run")
    assert all(r["response"] == "Here you go: \ufffd and \U0001F600." for r in records)
    assert all("\ufffd" in r["task"]["instruction"] for r in records)
    assert synth.export(tmp_path / "run", "sharegpt", tmp_path / "out.jsonl") == 3
    assert synth.dedup(tmp_path / "run", tmp_path / "clean.jsonl").total == 3


def test_a_long_retry_after_never_outlasts_max_outage(tmp_path):
    fault = Fault("status", status=429, headers={"Retry-After": "60"}, error_type="rate_limit_exceeded")
    with FakeTeacherServer(lambda body, attempt: fault) as server:
        started = time.monotonic()
        with pytest.raises(TeacherOutageError, match="asks to wait 60s"):
            synth.generate(queries=str(colours(tmp_path)), out=str(tmp_path / "run"), teacher=TEACHER,
                           api_base=server.url, max_outage=5, max_retries=2)
    assert time.monotonic() - started < 20


def _start(args, tmp_path):
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    return subprocess.Popen([sys.executable, "-m", "synth", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def test_ctrl_c_ends_a_long_retry_after_wait_at_once(tmp_path):
    fault = Fault("status", status=429, headers={"Retry-After": "120"}, error_type="rate_limit_exceeded")
    with FakeTeacherServer(lambda body, attempt: fault) as server:
        proc = _start(["generate", "--queries", str(colours(tmp_path)), "--teacher", TEACHER, "--api-base", server.url,
                       "--out", str(tmp_path / "run")], tmp_path)
        deadline = time.monotonic() + 60
        while len(server.attempts) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 10, "the first Ctrl-C must end the Retry-After wait"
    assert proc.returncode == 130 and "Traceback" not in stderr


def test_a_second_ctrl_c_exits_130_without_a_traceback(tmp_path):
    with FakeTeacherServer(lambda body, attempt: Reply("slow", delay=30)) as server:
        proc = _start(["generate", "--queries", str(colours(tmp_path)), "--teacher", TEACHER, "--api-base", server.url,
                       "--out", str(tmp_path / "run")], tmp_path)
        deadline = time.monotonic() + 60
        while len(server.attempts) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr and "CancelledError" not in stderr


def test_a_server_that_refuses_every_request_is_a_user_error(tmp_path):
    fault = Fault("status", status=400, error_type="invalid_request_error", message="temperature out of range")
    with FakeTeacherServer(lambda body, attempt: fault) as server:
        result = run_synth(["generate", "--queries", str(colours(tmp_path, 20)), "--teacher", TEACHER,
                            "--api-base", server.url, "--out", str(tmp_path / "run")])
    assert result.returncode == 2 and "refuses every request" in result.stderr and "Traceback" not in result.stderr


# ---- damaged run folders ------------------------------------------------------------------------------

@pytest.fixture
def finished_run(tmp_path):
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        synth.generate(queries=str(colours(tmp_path, 4)), out=str(tmp_path / "run"), teacher=TEACHER,
                       api_base=server.url)
    return tmp_path / "run"


@pytest.mark.parametrize("damage, message", [
    (lambda run: (run / "manifest.json").write_text("[1, 2]\n"), r"manifest.json: holds a JSON list, not an object"),
    (lambda run: (run / "spend.jsonl").open("a").write('{"session": 0, "estimate": 0.1}\n'),
     r"spend.jsonl:\d+: its 'n' is null, not an integer"),
    (lambda run: (run / "data.jsonl").open("a").write('{"no": "id"}\n'), r"data.jsonl:5: its 'id' is null"),
    (lambda run: (run / "config.json").write_text('{"num": "ten"}'), r"config.json: num must be an integer"),
])
def test_a_damaged_run_file_is_one_line_naming_it_on_resume(finished_run, damage, message):
    damage(finished_run)
    with pytest.raises((RunFolderError, ConfigError), match=message) as caught:
        synth.generate(resume=str(finished_run), num=6)
    assert "\n" not in str(caught.value)


def test_a_damaged_gate_file_is_one_line_naming_it(tmp_path):
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        from conftest import pipeline_script

        server.script = pipeline_script
        run = tmp_path / "run"
        synth.generate(out=str(run), teacher=TEACHER, api_base=server.url, num=2, concurrency=4)
        (run / "gate" / "meta.json").write_text("not json at all")
        with pytest.raises(RunFolderError, match=r"gate/meta.json: is not valid JSON"):
            synth.generate(resume=str(run), num=4)


def test_a_refused_resume_leaves_the_saved_config_alone(tmp_path):
    from conftest import pipeline_script
    from synth.gate.embeddings import bundled_minilm_path

    with FakeTeacherServer(pipeline_script) as server:
        run = tmp_path / "emb"
        synth.generate(out=str(run), teacher=TEACHER, api_base=server.url, num=2, concurrency=4)
        saved = (run / "config.json").read_bytes()
        with pytest.raises(ConfigError, match="holds embeddings from"):
            synth.generate(resume=str(run), embedder=str(bundled_minilm_path()))
        assert (run / "config.json").read_bytes() == saved
        assert synth.generate(resume=str(run), num=4).records >= 4


# ---- the library takes what users pass ----------------------------------------------------------------

def test_paths_and_dicts_work_and_none_is_not_a_teacher(tmp_path):
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        result = synth.generate({"queries": str(colours(tmp_path)), "teacher": TEACHER, "api_base": server.url},
                                out=tmp_path / "run")
    assert result.records == 3 and Path(result.path) == tmp_path / "run"
    with pytest.raises(ConfigError, match="teacher must be a string, not null"):
        synth.generate(teacher=None, out=tmp_path / "other")
    with pytest.raises(ConfigError, match="config must be a GenerateConfig or a dict"):
        synth.generate(["not", "a", "config"])
    assert not (tmp_path / "other").exists()


def test_max_cost_is_a_hard_cap_with_many_requests_in_flight(tmp_path):
    """Spent plus every reservation in flight never passes the cap, and the manifest holds only finite numbers."""
    with FakeTeacherServer(lambda body, attempt: explain_reply(body)) as server:
        result = synth.generate(queries=str(colours(tmp_path, 30)), out=str(tmp_path / "run"), teacher=TEACHER,
                                api_base=server.url, max_cost=0.02, input_cost=100.0, output_cost=100.0)
    usage = result.manifest["usage"]
    assert result.status == "stopped_budget" and usage["total_cost_usd"] <= 0.02
    assert all(math.isfinite(v) for v in usage.values() if isinstance(v, float))
