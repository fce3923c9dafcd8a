"""Batched greedy decoding with transformers: left padding, position ids from the attention mask, the KV cache.

Every row of a batch gets the answer it would get alone: pads sit on the left and are masked out, each row's
positions count from its own first real token, and a row leaves the batch (and the cache) as soon as it writes a
stop token or reaches `max_new_tokens`, so a long answer does not make the short ones pay for its steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch

from ..training.errors import ChatTemplateError


@dataclass
class Generated:
    tokens: list[int]                     # the answer's token ids, the stop token left out
    finish_reason: str = "length"         # "stop": it wrote a stop token; "length": max_new_tokens was reached
    seconds: float = 0.0                  # from the start of its batch to its last token
    logits: list[torch.Tensor] = field(default_factory=list)    # the logits of each step, when asked for


@dataclass
class Padded:
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor | None     # None: the model counts positions itself (0, 1, 2... from the left edge)


def prompt_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """The token ids of `messages` under the student's chat template, ending where the assistant's answer starts:
    the same text and tokenisation the student was trained on (synth.training.masking)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ChatTemplateError("the student's tokenizer has no chat template; use an instruct model or add one")
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # jinja raises its own errors, templates raise whatever they like
        raise ChatTemplateError(f"the student's chat template cannot render these messages: {exc}") from None
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def pad_batch(prompts: list[list[int]], pad_id: int) -> Padded:
    """Left-padded ids, the mask that hides the pads, and positions that start at 0 on each row's first token."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + list(p) for p in prompts], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return Padded(ids, mask, positions)


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def greedy(model: Any, prompts: list[list[int]], *, pad_id: int, stop_ids: Iterable[int], max_new_tokens: int,
           keep_logits: bool = False) -> list[Generated]:
    """Greedy answers to a batch of tokenised prompts, in their order."""
    from transformers import DynamicCache

    if not prompts:
        return []
    device, stops = _device(model), set(stop_ids)
    batch = pad_batch(prompts, pad_id)
    ids, mask = batch.input_ids.to(device), batch.attention_mask.to(device)
    positions = None if batch.position_ids is None else batch.position_ids.to(device)
    results = [Generated([]) for _ in prompts]
    live = torch.arange(len(prompts), device=device)            # which prompt each batch row answers
    cache = DynamicCache(config=model.config)
    started = time.perf_counter()
    for step in range(max_new_tokens):
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                    use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1, :].float()
        chosen = logits.argmax(-1)
        keep = _record(results, live.tolist(), chosen.tolist(), logits if keep_logits else None, stops,
                       step + 1 == max_new_tokens, time.perf_counter() - started)
        if not keep:
            break
        if len(keep) < len(live):
            rows = torch.tensor(keep, device=device)
            cache.batch_select_indices(rows)
            live, chosen, mask = live[rows], chosen[rows], mask[rows]
            positions = None if positions is None else positions[rows]
        ids = chosen.unsqueeze(-1)
        mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=-1)
        positions = None if positions is None else positions[:, -1:] + 1
    return results


def _record(results: list[Generated], live: list[int], chosen: list[int], logits: torch.Tensor | None,
            stops: set[int], last_step: bool, seconds: float) -> list[int]:
    """Append each live row's token; return the batch rows that go on (not stopped, not at the cap)."""
    keep = []
    for row, (prompt, token) in enumerate(zip(live, chosen)):
        result = results[prompt]
        if logits is not None:
            result.logits.append(logits[row].cpu())
        result.seconds = seconds
        if token in stops:
            result.finish_reason = "stop"
            continue
        result.tokens.append(token)
        if not last_step:
            keep.append(row)
    return keep


def in_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Prompt indices grouped into batches of similar length (longest first), so little of a batch is padding."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
