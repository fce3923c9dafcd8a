"""Helpers for the training tests: a tiny random Llama with SmolLM2's real tokenizer, and small datasets."""

from __future__ import annotations

import json
from pathlib import Path

import torch


def make_tiny_student(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 64-wide Llama with random weights and the embedded student's tokenizer and chat template."""
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    from synth.training.student import default_student

    tokenizer = AutoTokenizer.from_pretrained(str(default_student()))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def record(i: int, system: str = "You are a careful calculator. Explain briefly.") -> dict:
    """A synth-shaped record with a learnable pattern (sums), so a few steps make the loss fall."""
    a, b = 3 + i * 7 % 41, 5 + i * 13 % 37
    return {
        "id": f"rec-{i:04d}",
        "task": {"id": f"task-{i}", "instruction": f"Add {a} and {b}.", "is_classification": False,
                 "kind": "math", "origin": "machine"},
        "instance": {"index": 0, "input": "" if i % 2 else "Show the sum.", "reference_output": str(a + b)},
        "system_message": {"id": "calc", "text": system},
        "response": f"We add {a} and {b}. " + "Counting up step by step. " * (i % 4) + f"The sum is {a + b}.",
        "provenance": {},
    }


def write_run(folder: Path, n: int) -> Path:
    """A synth run folder holding `n` records in data.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "data.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps(record(i)) + "\n")
    return folder


def tiny_config(data: Path, out: Path, student: Path, **changes):
    from synth.training import TrainConfig

    values = dict(data=str(data), out=str(out), student=str(student), epochs=2, batch_size=2, max_len=128,
                  lr=1e-2, warmup_ratio=0.0, eval_fraction=0.2, samples=2, sample_max_tokens=8,
                  checkpoint_every=2, keep_checkpoints=10)
    values.update(changes)
    return TrainConfig(**values)
