"""The output folder of a finished run.

    OUT/
      adapter/            PEFT adapter (safetensors) + tokenizer + chat template: PeftModel.from_pretrained(base, OUT/adapter)
      merged/             with --merge: the full model with the adapter folded in, and its tokenizer
      train_config.json   the resolved config
      provenance.json     the data file and its sha256, the example ids of each split, the student, library versions
      summary.json        eval loss before/after, steps, tokens/s, truncated/dropped counts, runtime
      metrics.jsonl       one line per logged step and evaluation;  loss.png  the curves
      samples.jsonl       held-out prompts answered by the base and the tuned student
      checkpoints/        the last few resumable checkpoints
"""

from __future__ import annotations

import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .._version import __version__
from ..files import write_json_atomic
from ..formats import write_rows
from . import metrics
from .errors import StudentError
from .evaluate import sample_rows


def _versions() -> dict[str, str]:
    found = {"synth": __version__}
    for name in ("torch", "transformers", "peft"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def merge(adapter: Path, student_folder: Path, target: Path) -> Path:
    """Fold the adapter into a full-precision copy of the base and save it with the tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (adapter / "adapter_model.safetensors").is_file():
        raise StudentError(f"{adapter} holds no adapter_model.safetensors; synth loads adapters from safetensors "
                           "only, never from a pickle")
    base = AutoModelForCausalLM.from_pretrained(str(student_folder), dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def write_outputs(trainer: Any) -> Any:
    from .loop import TrainResult

    c, out = trainer.config, trainer.out
    adapter = out / "adapter"
    trainer.model.save_pretrained(adapter)
    trainer.tokenizer.save_pretrained(adapter)
    held = trainer.eval_convs[: c.samples]
    rows = sample_rows(trainer.model, trainer.tokenizer, held, c.sample_max_tokens, trainer.stop_ids,
                       trainer.runtime.device)
    write_rows(rows, out / "samples.jsonl", "jsonl")
    merged = merge(adapter, trainer.student_folder, out / "merged") if c.merge else None
    tokens_per_s = trainer.tokens / max(trainer.train_seconds, 1e-9)
    summary = {"steps": trainer.step, "train_loss": trainer.last_loss, "eval_loss_before": trainer.eval_before,
               "eval_loss_after": trainer.eval_after, "tokens": trainer.tokens, "train_seconds": trainer.train_seconds,
               "tokens_per_s": tokens_per_s, "counts": trainer.counts, "processes": trainer.world.size,
               "device": trainer.runtime.device.type, "dtype": str(trainer.runtime.dtype).removeprefix("torch."),
               "attention": trainer.runtime.attn, "qlora": trainer.runtime.qlora, "liger": trainer.liger}
    write_json_atomic(out / "summary.json", summary)
    write_json_atomic(out / "provenance.json", {**trainer.provenance, "student": c.student,
                                          "student_folder": str(trainer.student_folder), "versions": _versions()})
    metrics.plot(out)
    trainer.log(f"saved the adapter to {adapter}" + (f" and the merged model to {merged}" if merged else ""))
    return TrainResult(out, trainer.step, trainer.last_loss, trainer.eval_before, trainer.eval_after, tokens_per_s,
                       adapter, merged, summary)
