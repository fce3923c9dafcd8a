"""The training recipe end to end on a tiny random Llama: outputs, exact resume, NaN stop, errors."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from synth.training.metrics import read as read_metrics
from synth.errors import ConfigError, InputFileError, RunFolderError
from synth.training import DivergedError, StudentError, TrainConfig, Trainer, TrainMemoryError, train
from synth.training import checkpoint

from train_fixtures.tiny import make_tiny_student, tiny_config, write_run

FIXTURES = Path(__file__).parent / "train_fixtures"


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    return make_tiny_student(tmp_path_factory.mktemp("student") / "tiny")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("data") / "run", 24)


def losses(out):
    rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["grad_norm"]) for r in rows if r["kind"] == "train"]


def test_a_short_run_learns_and_writes_every_output(run, student, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = train(tiny_config(run, tmp_path / "out", student, epochs=4, merge=True), log=lambda m: None)
    out = tmp_path / "out"
    steps = losses(out)
    assert result.steps == len(steps) == 20                     # 19 train examples -> 10 rows of 2 -> 5 steps x 4
    assert steps[-1][1] < steps[0][1] - 0.5 and all(g > 0 for _, _, g in steps)
    assert result.eval_loss_after < result.eval_loss_before - 0.5
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["examples"] == 19 and summary["counts"]["eval_examples"] == 5
    provenance = json.loads((out / "provenance.json").read_text())
    assert len(provenance["train_ids"]) == 19 and len(provenance["data"]["sha256"]) == 64
    assert TrainConfig.load(out).epochs == 4
    samples = [json.loads(l) for l in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and {"base", "tuned", "reference", "messages"} <= set(samples[0])
    assert (out / "loss.png").stat().st_size > 1000
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "adapter" / "chat_template.jinja").is_file()

    tokenizer = AutoTokenizer.from_pretrained(str(out / "adapter"))
    ids = torch.tensor([tokenizer.apply_chat_template([{"role": "user", "content": "Add 3 and 5."}],
                                                      add_generation_prompt=True, return_dict=True)["input_ids"]])
    base = AutoModelForCausalLM.from_pretrained(str(student))
    with torch.no_grad():
        plain = base(ids).logits
        tuned = PeftModel.from_pretrained(base, str(out / "adapter")).eval()(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(str(out / "merged"))(ids).logits
    assert not torch.allclose(plain, tuned, atol=1e-3)          # the adapter changes the model...
    torch.testing.assert_close(merged, tuned, atol=1e-4, rtol=1e-4)   # ...and merging keeps that change


def test_resume_after_a_kill_replays_the_same_losses(run, student, tmp_path):
    config = tiny_config(run, tmp_path / "killed", student, epochs=3, samples=0, checkpoint_every=3,
                         lora_dropout=0.1)
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    worker = [sys.executable, str(FIXTURES / "run_train.py"), str(tmp_path / "config.json")]
    proc = subprocess.Popen(worker + ["--sleep", "0.5"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while checkpoint.latest(tmp_path / "killed") is None or checkpoint.latest(tmp_path / "killed").name < "step-00000006":
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    time.sleep(0.7)                                             # mid-way through a later step
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = losses(tmp_path / "killed")[-1][0]
    assert 6 <= killed_at < 15
    subprocess.run(worker + ["--resume"], check=True, capture_output=True, timeout=300)

    whole = train(tiny_config(run, tmp_path / "whole", student, epochs=3, samples=0, checkpoint_every=3,
                              lora_dropout=0.1), log=lambda m: None)
    assert losses(tmp_path / "killed") == losses(tmp_path / "whole")       # bit for bit, on CPU
    assert len(losses(tmp_path / "whole")) == whole.steps == 15
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert summary["eval_loss_after"] == whole.eval_loss_after
    resumed, straight = adapter_weights(tmp_path / "killed"), adapter_weights(tmp_path / "whole")
    assert resumed.keys() == straight.keys() and len(resumed) > 0
    for name, tensor in straight.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=0)


def adapter_weights(out):
    from safetensors.torch import load_file

    return load_file(str(Path(out) / "adapter" / "adapter_model.safetensors"))


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(run, student, tmp_path):
    config = dict(max_steps=4, samples=0, checkpoint_every=2, lora_dropout=0.1)
    train(tiny_config(run, tmp_path / "whole", student, **config), log=lambda m: None)
    train(tiny_config(run, tmp_path / "hurt", student, **config), log=lambda m: None)
    newest = tmp_path / "hurt" / "checkpoints" / "step-00000004"
    blob = newest / "optimizer.safetensors"
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF                                # one flipped byte in the newest checkpoint
    blob.write_bytes(bytes(data))
    assert not checkpoint.is_complete(newest)
    assert checkpoint.latest_complete(tmp_path / "hurt").name == "step-00000002"
    messages = []
    train(resume=tmp_path / "hurt", log=messages.append)
    assert any("skipped" in m and "step-00000004" in m for m in messages)
    assert any("resumed from" in m and "step-00000002" in m for m in messages)
    assert losses(tmp_path / "hurt") == losses(tmp_path / "whole")
    for name, tensor in adapter_weights(tmp_path / "whole").items():
        torch.testing.assert_close(adapter_weights(tmp_path / "hurt")[name], tensor, atol=1e-6, rtol=0)


def test_checkpoints_hold_no_pickles_and_a_pickled_adapter_is_refused(run, student, tmp_path):
    train(tiny_config(run, tmp_path / "out", student, max_steps=2, samples=0), log=lambda m: None)
    saved = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert not [p for p in saved if p.suffix in (".pt", ".pth", ".bin", ".pkl", ".ckpt")]
    newest = checkpoint.latest(tmp_path / "out")
    (newest / "adapter" / "adapter_model.safetensors").rename(newest / "adapter" / "adapter_model.bin")
    assert checkpoint.latest_complete(tmp_path / "out") is None             # a pickle never stands in
    from synth.training.output import merge

    with pytest.raises(StudentError, match="safetensors"):
        merge(newest / "adapter", student, tmp_path / "merged")


def test_a_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(run, student, tmp_path):
    trainer = Trainer(tiny_config(run, tmp_path / "out", student, checkpoint_every=2), log=lambda m: None).setup()

    def poison(module, args, output):
        if trainer.step >= 5:                                   # the sixth optimizer step goes bad
            return (output[0] * float("nan"), *output[1:]) if isinstance(output, tuple) else output * float("nan")
    trainer.model.base_model.model.model.layers[0].register_forward_hook(poison)
    with pytest.raises(DivergedError) as error:
        trainer.train()
    message = str(error.value)
    assert "\n" not in message and "nan at step 6" in message and "step-00000004" in message
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path / "out")] == ["step-00000002", "step-00000004"]
    from safetensors.torch import load_file
    weights = load_file(str(tmp_path / "out/checkpoints/step-00000004/adapter/adapter_model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert json.loads((tmp_path / "out/checkpoints/step-00000004/state.json").read_text())["step"] == 4


def test_running_out_of_memory_says_what_to_lower(run, student, tmp_path, monkeypatch):
    trainer = Trainer(tiny_config(run, tmp_path / "out", student, eval_fraction=0.0), log=lambda m: None).setup()

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
    monkeypatch.setattr(trainer, "ddp_model", no_memory)
    with pytest.raises(TrainMemoryError, match=r"lower --batch-size \(now 2\) or --max-len \(now 128\), or add "
                                               r"--grad-checkpointing"):
        trainer.train()


def test_bad_inputs_are_one_line_errors(run, student, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputFileError, match="empty"):
        train(tiny_config(tmp_path / "empty.jsonl", tmp_path / "a", student))
    no_tokenizer = tmp_path / "bare"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text((student / "config.json").read_text())
    with pytest.raises(StudentError, match="has no tokenizer"):
        train(tiny_config(run, tmp_path / "b", no_tokenizer))
    with pytest.raises(InputFileError, match="fits in --max-len 16"):
        train(tiny_config(run, tmp_path / "c", student, max_len=16, overlong="drop"))
    with pytest.raises(ConfigError, match="--lora-r must be at least 1, not 0; --lr must be above 0, not 0"):
        train(tiny_config(run, tmp_path / "d", student, lora_r=0, lr=0))


def test_an_existing_output_needs_resume_or_overwrite(run, student, tmp_path):
    config = tiny_config(run, tmp_path / "out", student, max_steps=1, samples=0, eval_fraction=0.0)
    train(config, log=lambda m: None)
    with pytest.raises(RunFolderError, match="--resume"):
        train(config, log=lambda m: None)
    assert train(config, overwrite=True, log=lambda m: None).steps == 1
    with pytest.raises(ConfigError, match="cannot change lora_r"):
        train(resume=tmp_path / "out", lora_r=4)
    logged = []         # the NaN advice says to lower --lr and resume: the change is allowed, and logged
    assert train(resume=tmp_path / "out", max_steps=2, lr=config.lr / 100, log=logged.append).steps == 2
    assert any(f"lr changes from {config.lr:g} to {config.lr / 100:g}" in m for m in logged)
    step_two = [r for r in read_metrics(tmp_path / "out") if r.get("kind") == "train" and r["step"] == 2]
    assert step_two and step_two[0]["lr"] <= config.lr / 100


def test_two_processes_match_one_process_with_twice_the_accumulation(run, student, tmp_path):
    common = dict(epochs=1, samples=0, batch_size=1, lora_dropout=0.0)
    config = tiny_config(run, tmp_path / "ddp", student, **common)
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                    str(FIXTURES / "run_train.py"), str(tmp_path / "config.json")],
                   check=True, capture_output=True, timeout=300, env=env)
    single = train(tiny_config(run, tmp_path / "one", student, grad_accum=2, **common), log=lambda m: None)
    ddp, one = losses(tmp_path / "ddp"), losses(tmp_path / "one")
    assert len(ddp) == len(one) == single.steps == 5
    for (s1, l1, g1), (s2, l2, g2) in zip(ddp, one):
        assert s1 == s2 and math.isclose(l1, l2, rel_tol=1e-5) and math.isclose(g1, g2, rel_tol=1e-4)
    assert json.loads((tmp_path / "ddp" / "summary.json").read_text())["processes"] == 2
