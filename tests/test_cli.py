"""The command line: one-line errors for user mistakes, and the export formats."""

import json
import os
import re
import subprocess
import sys

import pytest

import synth


SETTINGS_LINE = re.compile(r"^\w+ settings: ")     # the resolved settings, printed once a run starts


def synth_cli(*args, env_extra=None, unset=("OPENAI_API_KEY",)):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "synth", *args], capture_output=True, text=True, env=env, timeout=120)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [l for l in result.stderr.splitlines() if l.strip() and not SETTINGS_LINE.match(l)]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_key_is_one_line_and_creates_nothing(tmp_path):
    result = synth_cli("generate", "--teacher", "gpt-4o", "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "OPENAI_API_KEY")
    assert not (tmp_path / "run").exists()


def test_bad_seed_file_is_one_line(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"instruction": "fine"}\n{"instruction": oops}\n')
    result = synth_cli("generate", "--teacher", "openai/x", "--api-base", "http://127.0.0.1:9/v1",
                       "--seeds", str(seeds), "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "seeds.jsonl:2", "not valid JSON")


@pytest.mark.parametrize("args, fragment", [
    (["generate", "--resume", "/nonexistent/run"], "not a synth run folder"),
    (["generate", "--num", "0", "--teacher", "openai/x", "--api-base", "http://127.0.0.1:9/v1"], "--num must be at least 1"),
    (["generate", "--config", "/nonexistent/config.json"], "no such config file"),
    (["export", "/nonexistent/run", "--out", "x.jsonl"], "no such file or folder"),
    (["prompts", "show", "nope"], "no prompt template 'nope'"),
])
def test_user_errors_are_one_line(args, fragment):
    assert_one_line_error(synth_cli(*args), fragment)


def test_existing_run_folder_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    result = synth_cli("generate", "--teacher", "openai/x", "--api-base", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "run"))
    assert_one_line_error(result, "already exists", "--resume", "--overwrite")
    result = synth_cli("generate", "--teacher", "openai/x", "--api-base", "http://127.0.0.1:9/v1", "--out",
                       str(tmp_path / "run"), "--overwrite")
    assert_one_line_error(result, "not provably a synth run folder")
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_generate_and_export_through_the_cli(teacher_server, tmp_path):
    run = tmp_path / "run"
    result = synth_cli("generate", "--teacher", "openai/fake-teacher", "--api-base", teacher_server.url,
                       "--num", "4", "--out", str(run))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("completed:")
    records = synth.load_records(run)
    bar = result.stderr.splitlines()[-1]                        # the progress bar's final state
    manifest = json.loads((run / "manifest.json").read_text())
    assert f"{min(len(records), 4)}/4" in bar and "$0.0000" in bar
    assert f"rejected {sum(manifest['counts']['rejected'].values())}" in bar and "failed 0" in bar
    for fmt in ("openai-chat", "sharegpt", "alpaca"):
        out = tmp_path / f"export.{fmt}"
        assert synth_cli("export", str(run), "--format", fmt, "--out", str(out)).returncode == 0
    chat = [json.loads(l) for l in (tmp_path / "export.openai-chat").read_text().splitlines()]
    assert len(chat) == len(records)
    assert [m["role"] for m in chat[0]["messages"]] == ["system", "user", "assistant"]
    assert chat[0]["messages"][0]["content"] == records[0]["system_message"]["text"]
    share = [json.loads(l) for l in (tmp_path / "export.sharegpt").read_text().splitlines()]
    assert [t["from"] for t in share[0]["conversations"]] == ["system", "human", "gpt"]
    alpaca = json.loads((tmp_path / "export.alpaca").read_text())
    assert alpaca[0]["output"] == records[0]["response"] and alpaca[0]["instruction"] == records[0]["task"]["instruction"]


def test_hf_export_loads_with_datasets(teacher_server, tmp_path):
    import datasets

    synth.generate(out=str(tmp_path / "run"), teacher="openai/fake-teacher", api_base=teacher_server.url, num=3)
    count = synth.export(tmp_path / "run", "hf", tmp_path / "hf")
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(loaded) == count >= 3
    assert loaded[0]["messages"][2]["role"] == "assistant"
    assert json.loads(loaded[0]["provenance"])["teacher"] == "openai/fake-teacher"


def test_unknown_export_format(tmp_path, teacher_server):
    synth.generate(out=str(tmp_path / "run"), teacher="openai/fake-teacher", api_base=teacher_server.url, num=1)
    assert_one_line_error(synth_cli("export", str(tmp_path / "run"), "--format", "csv", "--out", "x"), "--format must be one of")


@pytest.mark.parametrize("args, fragment, hint", [
    (["generate", "--num", "abc"], "invalid value for '--num'", "see synth generate --help"),
    (["generate", "--no-such-flag"], "no such option: --no-such-flag", "see synth generate --help"),
    (["export"], "missing argument", "see synth export --help"),
    (["frobnicate"], "no such command 'frobnicate'", "see synth --help"),
])
def test_usage_errors_are_one_line_with_a_hint(args, fragment, hint):
    result = synth_cli(*args)
    assert result.returncode == 2
    assert_one_line_error(result, "error: ", fragment, hint)
    assert "Usage" not in result.stderr + result.stdout


def test_max_cost_without_a_price_is_a_user_error(tmp_path):
    result = synth_cli("generate", "--teacher", "openai/my-model", "--api-base", "http://127.0.0.1:9/v1",
                       "--max-cost", "1", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert_one_line_error(result, "--max-cost", "'openai/my-model'", "--input-cost and --output-cost")
    assert not (tmp_path / "run").exists()
    half = synth_cli("generate", "--teacher", "openai/my-model", "--api-base", "http://127.0.0.1:9/v1",
                     "--max-cost", "1", "--input-cost", "1", "--out", str(tmp_path / "run"))
    assert half.returncode == 2
    assert_one_line_error(half, "--input-cost and --output-cost go together")


def test_given_prices_are_spent_against_the_cap(teacher_server, tmp_path):
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"instruction": f"Explain fact number {i} about tides."}) + "\n" for i in range(40)))
    result = synth_cli("generate", "--teacher", "openai/fake-teacher", "--api-base", teacher_server.url,
                       "--queries", str(queries), "--out", str(tmp_path / "run"), "--concurrency", "2",
                       "--max-cost", "0.05", "--input-cost", "100", "--output-cost", "400", "--max-tokens", "64")
    assert result.returncode == 3, result.stderr                       # stopped at the cap
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert 0 < manifest["usage"]["cost_usd"] <= 0.05
    assert 0 < manifest["counts"]["records"] < 40


def test_the_library_example_runs_end_to_end(teacher_server, tmp_path):
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "library_pipeline.py")
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-not-a-real-key"}
    result = subprocess.run([sys.executable, example, "gpt-4o-mini", teacher_server.url], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("completed: 5 records")
    exported = (tmp_path / "runs" / "example" / "train.jsonl").read_text().splitlines()
    assert len(exported) == 5 and json.loads(exported[0])["messages"][-1]["role"] == "assistant"
