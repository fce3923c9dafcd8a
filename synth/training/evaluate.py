"""Held-out loss, and sample answers from the base and the tuned student on held-out instructions."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterable

import torch

from .data import Conversation


@torch.no_grad()
def token_loss_sums(model: Any, batches: Iterable[dict[str, torch.Tensor]], device: torch.device,
                    autocast: Callable[[], Any]) -> tuple[float, int]:
    """(sum of token losses, trained tokens) over `batches`; the caller reduces across processes."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        n = int((batch["labels"][:, 1:] != -100).sum())
        if n == 0:
            continue
        with autocast():
            out = model(input_ids=batch["input_ids"].to(device), position_ids=batch["position_ids"].to(device),
                        labels=batch["labels"].to(device), num_items_in_batch=torch.tensor(1.0), use_cache=False)
        total += float(out.loss)
        count += n
    model.train(was_training)
    return total, count


@torch.no_grad()
def generate_answers(model: Any, tokenizer: Any, conversations: list[Conversation], max_new_tokens: int,
                     stop_ids: set[int], device: torch.device) -> list[str]:
    """Greedy answers to each conversation's prompt (everything before its last assistant message)."""
    was_training = model.training
    model.eval()
    answers = []
    for conv in conversations:
        inputs = tokenizer.apply_chat_template(conv.messages[:-1], add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                eos_token_id=sorted(stop_ids), pad_token_id=tokenizer.pad_token_id)
        answers.append(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    model.train(was_training)
    return answers


def sample_rows(model: Any, tokenizer: Any, conversations: list[Conversation], max_new_tokens: int,
                stop_ids: set[int], device: torch.device) -> list[dict[str, Any]]:
    """One row per held-out conversation: its prompt, the reference answer, the base and the tuned answer."""
    if not conversations:
        return []
    tuned = generate_answers(model, tokenizer, conversations, max_new_tokens, stop_ids, device)
    disable = getattr(model, "disable_adapter", None)
    with disable() if disable else contextlib.nullcontext():
        base = generate_answers(model, tokenizer, conversations, max_new_tokens, stop_ids, device)
    return [{"id": conv.id, "messages": conv.messages[:-1], "reference": conv.messages[-1]["content"],
             "base": b, "tuned": t} for conv, b, t in zip(conversations, base, tuned)]
