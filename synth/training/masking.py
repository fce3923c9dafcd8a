"""Turn one conversation into token ids and a loss mask, with the student's own chat template.

Only assistant tokens are trained, up to and including the end-of-turn token, so the student learns to stop.
The text is cut where the template puts each assistant turn and every piece is tokenised on its own, which is
exactly how the student sees a prompt at serving time (prompt tokens first, then what it generates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from .errors import ChatTemplateError

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]                          # IGNORE where no loss is taken

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def stop_token_ids(tokenizer: Any, generation_eos: int | list[int] | None = None) -> set[int]:
    """Token ids that end an assistant turn: the tokenizer's eos and the generation config's eos ids."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    if isinstance(generation_eos, int):
        ids.add(generation_eos)
    elif generation_eos:
        ids.update(generation_eos)
    return ids


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as exc:  # jinja raises its own errors, templates raise whatever they like
        raise ChatTemplateError(f"the student's chat template cannot render these messages: {exc}") from None


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []


def encode_conversation(messages: list[dict[str, str]], tokenizer: Any, stop_ids: Iterable[int]) -> Encoded:
    """Token ids and labels for `messages`; labels are IGNORE everywhere but assistant turns.

    Each assistant turn is trained up to and including its first stop token; if the template writes none,
    the tokenizer's eos is appended. Tokens the template puts after the final stop token are dropped.
    """
    if getattr(tokenizer, "chat_template", None) is None:
        raise ChatTemplateError("the student's tokenizer has no chat template; use an instruct model or add one")
    stops = set(stop_ids)
    input_ids: list[int] = []
    labels: list[int] = []
    rendered = ""
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:index], generation_prompt=True)
        full = _render(tokenizer, messages[: index + 1], generation_prompt=False)
        if not prompt.startswith(rendered) or not full.startswith(prompt):
            raise ChatTemplateError("the student's chat template renders the conversation differently from its "
                                    "prompt, so the assistant turn cannot be located")
        context = _ids(tokenizer, prompt[len(rendered):])
        answer = _ids(tokenizer, full[len(prompt):])
        end = next((i for i, tok in enumerate(answer) if tok in stops), None)
        if end is None:
            if tokenizer.eos_token_id is None:
                raise ChatTemplateError("the student's tokenizer has no eos token to end an answer with")
            trained, after = answer + [tokenizer.eos_token_id], []
        else:
            trained, after = answer[: end + 1], answer[end + 1:]
        input_ids += context + trained + after
        labels += [IGNORE] * len(context) + trained + [IGNORE] * len(after)
        rendered = full
    if not labels:
        raise ChatTemplateError("a conversation has no assistant message to train on")
    while labels and labels[-1] == IGNORE:         # trailing template text after the last answer is never generated
        labels.pop()
        input_ids.pop()
    return Encoded(input_ids, labels)


def fit_length(encoded: Encoded, max_len: int, overlong: str) -> Encoded | None:
    """`encoded` cut to `max_len` tokens ("truncate") or None ("drop"); None too when no trained token is left."""
    if len(encoded.input_ids) <= max_len:
        return encoded
    if overlong == "drop":
        return None
    cut = Encoded(encoded.input_ids[:max_len], encoded.labels[:max_len])
    return cut if cut.trained_tokens else None


def encode_dataset(conversations: list[Any], tokenizer: Any, stop_ids: Iterable[int], max_len: int,
                   overlong: str) -> tuple[list[Encoded], dict[str, int]]:
    """Encode every conversation and fit it to `max_len`; counts say how many were truncated or dropped."""
    kept: list[Encoded] = []
    counts = {"examples": len(conversations), "truncated": 0, "dropped": 0}
    for conv in conversations:
        encoded = encode_conversation(conv.messages, tokenizer, stop_ids)
        fitted = fit_length(encoded, max_len, overlong)
        if fitted is None:
            counts["dropped"] += 1
            continue
        if fitted is not encoded:
            counts["truncated"] += 1
        kept.append(fitted)
    return kept, counts
