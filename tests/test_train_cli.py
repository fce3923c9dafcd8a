"""`synth train` on the command line: flags become a TrainConfig; user errors are one line, no traceback."""

import json
import os
import subprocess
import sys

import pytest

from train_fixtures.tiny import make_tiny_student, write_run

def synth_train(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "synth", "train", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("train settings:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return make_tiny_student(tmp_path_factory.mktemp("student") / "tiny")


def test_user_errors_are_one_line(tmp_path, student):
    (tmp_path / "empty.jsonl").write_text("")
    assert_one_line_error(synth_train(tmp_path / "empty.jsonl", "--student", student, "--out", tmp_path / "a"),
                          "empty.jsonl", "empty")
    (tmp_path / "bad.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    assert_one_line_error(synth_train(tmp_path / "bad.jsonl", "--student", student, "--out", tmp_path / "b"),
                          "bad.jsonl:1", "assistant")
    assert_one_line_error(synth_train("--out", tmp_path / "c"), "pass a dataset")
    assert_one_line_error(synth_train("--resume", tmp_path / "nothing"), "nothing to resume")


def test_bad_settings_are_one_line_and_leave_no_folder_behind(tmp_path, student):
    data = write_run(tmp_path / "run", 6)
    assert_one_line_error(synth_train(data, "--student", student, "--scheduler", "bogus", "--out", tmp_path / "a"),
                          "--scheduler must be one of", "cosine")
    (tmp_path / "typed.json").write_text('{"epochs": "3"}')
    assert_one_line_error(synth_train(data, "--config", tmp_path / "typed.json", "--out", tmp_path / "b"),
                          "typed.json", "epochs must be an integer")
    # found only once the student is loaded (after the progress log): the error is still one line, and the
    # corrected command is not refused afterwards
    result = synth_train(data, "--student", student, "--target-modules", "no_such_layer", "--out", tmp_path / "c")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --target-modules no_such_layer fits no layer") and "all-linear" in last
    assert not (tmp_path / "c" / "train_config.json").exists()


def test_flags_reach_the_config_and_a_run_finishes(tmp_path, student):
    run = write_run(tmp_path / "run", 8)
    result = synth_train(run, "--student", student, "--out", tmp_path / "out", "--max-steps", "2", "--lora-r", "4",
                         "--max-len", "96", "--samples", "1", "--no-packing", "--erase-prompt")
    assert result.returncode == 0, result.stderr
    assert "trained 2 steps" in result.stdout and "Loading weights" not in result.stderr
    saved = json.loads((tmp_path / "out" / "train_config.json").read_text())
    assert (saved["lora_r"], saved["max_len"], saved["packing"], saved["erase_prompt"]) == (4, 96, False, True)
    adapter = json.loads((tmp_path / "out" / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 32
    sample = json.loads((tmp_path / "out" / "samples.jsonl").read_text().splitlines()[0])
    assert sample["messages"][0]["content"] == "You are a helpful assistant."      # prompt erasing
    resumed = synth_train("--resume", tmp_path / "out", "--max-steps", "3")
    assert resumed.returncode == 0 and "trained 3 steps" in resumed.stdout, resumed.stderr


def test_torchrun_runs_the_command_line_on_two_processes(tmp_path, student):
    run = write_run(tmp_path / "run", 8)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "-m", "synth", "train", str(run), "--student", str(student), "--out", str(tmp_path / "out"),
                             "--max-steps", "2", "--batch-size", "1", "--samples", "0", "--max-len", "96"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 2
    assert result.stdout.count("trained 2 steps") == 1                 # only the main process reports


def test_select_trains_on_the_judged_best_rows_only(tmp_path, student):
    run = write_run(tmp_path / "run", 10)
    best = {"rec-0002", "rec-0005", "rec-0007", "rec-0009"}
    with open(run / "scores.jsonl", "w", encoding="utf-8") as fh:      # where `synth judge` writes a run's scores
        for i in range(10):
            rid = f"rec-{i:04d}"
            fh.write(json.dumps({"id": f"{rid}#quality", "record_id": rid, "rubric": "quality", "status": "ok",
                                 "result": {"score": 5 if rid in best else 2, "reason": "r"}}) + "\n")
    result = synth_train(run, "--student", student, "--out", tmp_path / "out", "--max-steps", "1", "--samples", "0",
                         "--max-len", "96", "--select", "4", "--select-strategy", "quality")
    assert result.returncode == 0, result.stderr
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert set(provenance["train_ids"]) | set(provenance["eval_ids"]) == best
    assert provenance["selection"] == {"budget": 4, "strategy": "quality", "scores": None, "kept": 4}
