"""The students' answers: which models answer (contestants), one base in memory with its adapters switched on and
off, batched greedy decoding, and the reference answers' token loss under each model.

A contestant is the base model of a student folder with one adapter active, or none. Contestants that share a base
share one copy of it: `PeftModel.disable_adapter()` gives the base, `set_adapter()` a student.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import ConfigError
from ..files import read_json_object
from ..training.errors import StudentError
from .decode import greedy, in_batches, prompt_ids
from .tasks import EvalTask

MAX_REFERENCE_TOKENS = 2048


@dataclass
class Contestant:
    name: str                      # "tuned", "base" or, head to head, the student's path
    base: Path                     # the base model's folder
    adapter: Path | None = None    # the LoRA adapter that is active, None for the base itself


@dataclass
class Answered:
    rows: list[dict[str, Any]]                    # answers.jsonl: one per task and contestant
    reference_loss: dict[str, float | None]       # mean token loss of the references, per contestant
    runtime: dict[str, Any]                       # backend, device, dtype, tokens/s per contestant


def student_parts(folder: Path) -> tuple[Path, Path | None]:
    """(the base model's folder, the adapter folder or None) of a `synth train` output, a bare PEFT adapter folder
    or a plain Hugging Face model folder."""
    from ..training.config import TrainConfig
    from ..training.student import resolve_student

    folder = Path(folder)
    if (folder / "adapter" / "adapter_config.json").is_file():
        provenance = read_json_object(folder / "provenance.json", required=False)
        name = provenance.get("student")
        if not isinstance(name, str):
            name = TrainConfig.load(folder).student
        return resolve_student(name), folder / "adapter"
    if (folder / "adapter_config.json").is_file():
        config = read_json_object(folder / "adapter_config.json")
        base = config.get("base_model_name_or_path")
        if not isinstance(base, str) or not (Path(base) / "config.json").is_file():
            raise StudentError(f"{folder} is an adapter whose base model {base!r} is not a local folder; evaluate "
                               "the synth train output folder that holds it instead")
        return resolve_student(base), folder
    if (folder / "config.json").is_file():
        return resolve_student(str(folder)), None
    raise StudentError(f"{folder} is not a student: expected a synth train output folder (with adapter/), a PEFT "
                       "adapter folder or a Hugging Face model folder")


def contestants_for(mode: str, students: list[Path]) -> list[Contestant]:
    """The models that answer: tuned and base ("base"), tuned alone ("teacher"), or two students ("students")."""
    parts = [student_parts(s) for s in students]
    if mode == "students":
        return [Contestant(str(s), base, adapter) for s, (base, adapter) in zip(students, parts)]
    base, adapter = parts[0]
    if adapter is None:
        raise ConfigError(f"{students[0]} has no adapter, so it has no base to compare with; use --against teacher, "
                          "or name a second student")
    tuned = Contestant("tuned", base, adapter)
    return [tuned, Contestant("base", base, None)] if mode == "base" else [tuned]


def runtime_for(precision: str) -> Any:
    """The training runtime's device and dtype (bf16 on a GPU that has it, for "auto"), with SDPA attention, which
    honours the padding mask (synth's packed training attention does not read one), and never a 4-bit base."""
    from ..training.config import TrainConfig
    from ..training.student import pick_runtime

    return pick_runtime(TrainConfig(precision=precision, attn="sdpa", qlora="off"))


def load_base(folder: Path, precision: str) -> Any:
    """The base model for decoding, in eval mode, on the runtime's device and in its dtype."""
    from ..training.student import load_model

    model = load_model(folder, runtime_for(precision))
    model.eval()
    return model


def with_adapters(model: Any, group: list[Contestant]) -> tuple[Any, dict[str, str]]:
    """The model with every adapter of `group` loaded; returns it and each contestant's adapter name."""
    names: dict[str, str] = {}
    for index, contestant in enumerate(c for c in group if c.adapter is not None):
        name = f"adapter{index}"
        if not (contestant.adapter / "adapter_model.safetensors").is_file():
            raise StudentError(f"{contestant.adapter} holds no adapter_model.safetensors; synth loads adapters "
                               "from safetensors only, never from a pickle")
        if not names:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(contestant.adapter), adapter_name=name)
        else:
            model.load_adapter(str(contestant.adapter), adapter_name=name)
        names[contestant.name] = name
    model.eval()
    return model, names


def active(model: Any, contestant: Contestant, names: dict[str, str]) -> contextlib.AbstractContextManager:
    """A context in which `model` answers as `contestant`: its adapter on, or every adapter off."""
    if contestant.name in names:
        model.set_adapter(names[contestant.name])
        return contextlib.nullcontext()
    disable = getattr(model, "disable_adapter", None)
    return disable() if disable is not None else contextlib.nullcontext()


def adapter_rank(adapter: Path) -> int:
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    return int(config.get("r") or 8)


def answer_rows(model: Any, tokenizer: Any, tasks: list[EvalTask], name: str, *, stop_ids: set[int],
                max_new_tokens: int, batch_size: int, progress: Callable[[int, int], None] | None = None
                ) -> tuple[list[dict[str, Any]], float]:
    """One answers.jsonl row per task, answered greedily in batches of similar length; and the seconds taken."""
    encoded = [prompt_ids(tokenizer, t.messages) for t in tasks]
    rows: list[dict[str, Any] | None] = [None] * len(tasks)
    started = time.perf_counter()
    for batch in in_batches([len(e) for e in encoded], batch_size):
        for index, gen in zip(batch, greedy(model, [encoded[i] for i in batch], pad_id=tokenizer.pad_token_id,
                                            stop_ids=stop_ids, max_new_tokens=max_new_tokens)):
            rows[index] = answer_row(tasks[index], name, tokenizer.decode(gen.tokens, skip_special_tokens=True),
                                     len(gen.tokens), gen.seconds, gen.finish_reason)
        if progress:
            progress(sum(r is not None for r in rows), len(rows))
    return [r for r in rows if r is not None], time.perf_counter() - started


def answer_row(task: EvalTask, model: str, text: str, tokens: int, seconds: float, finish_reason: str
               ) -> dict[str, Any]:
    return {"id": task.id, "model": model, "prompt": task.prompt, "system": task.system, "answer": text.strip(),
            "tokens": tokens, "seconds": round(seconds, 4), "finish_reason": finish_reason}


def encoded_references(tokenizer: Any, tasks: list[EvalTask], stop_ids: set[int]) -> list[Any]:
    """Each reference as a training example (prompt, then the reference as the answer, loss on the answer only)."""
    from ..training.masking import encode_conversation, fit_length

    found = []
    for task in tasks:
        if task.reference:
            encoded = encode_conversation(task.messages + [{"role": "assistant", "content": task.reference}],
                                          tokenizer, stop_ids)
            fitted = fit_length(encoded, MAX_REFERENCE_TOKENS, "truncate")
            if fitted is not None:
                found.append(fitted)
    return found


def reference_loss(model: Any, examples: list[Any], pad_id: int, batch_size: int) -> float | None:
    """The mean token loss of the reference answers under `model` (the training loss, on held-out answers)."""
    from ..training.evaluate import token_loss_sums
    from ..training.packing import collate

    if not examples:
        return None
    rows = [[i] for i in range(len(examples))]
    batches = [collate(examples, rows[i: i + batch_size], pad_id) for i in range(0, len(rows), batch_size)]
    device = next(model.parameters()).device
    total, count = token_loss_sums(model, batches, device, contextlib.nullcontext)
    return total / max(count, 1)


def release_memory() -> None:
    """Give back what a model that is no longer referenced held, before the next one (or the judge) loads."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def backend_for(requested: str) -> str:
    """"vllm" when asked for, or (auto) when it is installed and a GPU is there; "transformers" otherwise."""
    import importlib.util

    installed = importlib.util.find_spec("vllm") is not None
    if requested == "vllm" and not installed:
        raise ConfigError("--backend vllm needs the vllm package: pip install vllm (or leave --backend at auto)")
    if requested == "auto":
        return "vllm" if installed and torch.cuda.is_available() else "transformers"
    return requested


def answer_all(tasks: list[EvalTask], contestants: list[Contestant], *, precision: str, backend: str,
               max_new_tokens: int, batch_size: int, log: Callable[[str], None] = lambda _: None) -> Answered:
    """Every contestant's answers to every task, and the references' loss under each; one base in memory at a
    time, shared by the contestants built on it."""
    rows: list[dict[str, Any]] = []
    losses: dict[str, float | None] = {}
    speed: dict[str, Any] = {}
    chosen = runtime_for(precision)
    runtime: dict[str, Any] = {"backend": backend_for(backend), "device": chosen.device.type,
                               "dtype": str(chosen.dtype).removeprefix("torch.")}
    groups: dict[Path, list[Contestant]] = {}
    for contestant in contestants:
        groups.setdefault(Path(contestant.base).resolve(), []).append(contestant)
    for base, group in groups.items():
        if runtime["backend"] == "vllm":
            from .vllm_backend import answer_group
        else:
            answer_group = _answer_group_transformers
        found, group_losses, group_speed = answer_group(base, group, tasks, precision=precision,
                                                        max_new_tokens=max_new_tokens, batch_size=batch_size, log=log)
        rows += found
        losses.update(group_losses)
        speed.update(group_speed)
    runtime["speed"] = speed
    return Answered(rows, losses, runtime)


def _answer_group_transformers(base: Path, group: list[Contestant], tasks: list[EvalTask], *, precision: str,
                               max_new_tokens: int, batch_size: int, log: Callable[[str], None]
                               ) -> tuple[list[dict[str, Any]], dict[str, float | None], dict[str, Any]]:
    from ..training.masking import stop_token_ids
    from ..training.student import load_tokenizer

    tokenizer = load_tokenizer(base)
    model = load_base(base, precision)
    stops = stop_token_ids(tokenizer, getattr(model.generation_config, "eos_token_id", None))
    references = encoded_references(tokenizer, tasks, stops)
    model, names = with_adapters(model, group)
    rows, losses, speed = [], {}, {}
    for contestant in group:
        with active(model, contestant, names):
            found, seconds = answer_rows(model, tokenizer, tasks, contestant.name, stop_ids=stops,
                                         max_new_tokens=max_new_tokens, batch_size=batch_size)
            losses[contestant.name] = reference_loss(model, references, tokenizer.pad_token_id, batch_size)
        tokens = sum(r["tokens"] for r in found)
        speed[contestant.name] = {"tokens": tokens, "seconds": round(seconds, 3),
                                  "tokens_per_s": round(tokens / max(seconds, 1e-9), 2)}
        log(f"answers: {contestant.name} answered {len(found)} prompts, {tokens} tokens in {seconds:.1f} s")
        rows += found
    del model
    release_memory()
    return rows, losses, speed
