"""Answers through vLLM, on a GPU where it is installed: the base model loaded once, each student's adapter sent
as a LoRA request, greedy sampling with the chat template's stop tokens, and the references' loss from the
prompt log-probabilities vLLM returns.

The prompts go in as token ids made by the same chat template and tokeniser as the transformers path, so both
backends answer exactly the same prompts. vLLM schedules every prompt of a model in one call, so an answer's
`seconds` is that call's wall time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from .answers import Contestant, adapter_rank, answer_row, encoded_references, release_memory, runtime_for
from ..training.masking import IGNORE
from .decode import prompt_ids
from .tasks import EvalTask

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)      # the ranks vLLM can hold; an adapter's rank is rounded up


def _engine(base: Path, group: list[Contestant], precision: str, max_len: int) -> Any:
    from vllm import LLM

    ranks = [adapter_rank(c.adapter) for c in group if c.adapter is not None]
    options: dict[str, Any] = {"model": str(base), "dtype": str(runtime_for(precision).dtype).removeprefix("torch."),
                               "max_model_len": max_len, "seed": 0}
    if ranks:
        options.update(enable_lora=True, max_loras=len(ranks),
                       max_lora_rank=next((r for r in LORA_RANKS if r >= max(ranks)), max(ranks)))
    return LLM(**options)


def _lora_requests(group: list[Contestant]) -> dict[str, Any]:
    from vllm.lora.request import LoRARequest

    found, number = {}, 0
    for contestant in group:
        if contestant.adapter is not None:
            number += 1                                   # vLLM wants a positive id, unique per adapter
            found[contestant.name] = LoRARequest(lora_name=f"adapter{number}", lora_int_id=number,
                                                 lora_path=str(contestant.adapter))
    return found


def answer_group(base: Path, group: list[Contestant], tasks: list[EvalTask], *, precision: str, max_new_tokens: int,
                 batch_size: int, log: Callable[[str], None]
                 ) -> tuple[list[dict[str, Any]], dict[str, float | None], dict[str, Any]]:
    """The transformers path's contract (answers.answer_all), through one vLLM engine for the whole group."""
    from vllm import SamplingParams

    from ..training.masking import stop_token_ids
    from ..training.student import load_tokenizer

    tokenizer = load_tokenizer(base)
    stops = stop_token_ids(tokenizer, _generation_eos(base))
    encoded = [prompt_ids(tokenizer, t.messages) for t in tasks]
    references = encoded_references(tokenizer, tasks, stops)
    longest = max([len(e) + max_new_tokens for e in encoded] + [len(r.input_ids) for r in references])
    llm = _engine(base, group, precision, longest)
    greedy = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop_token_ids=sorted(stops),
                            skip_special_tokens=True)
    requests = _lora_requests(group)
    rows, losses, speed = [], {}, {}
    for contestant in group:
        lora = requests.get(contestant.name)
        started = time.perf_counter()
        outputs = llm.generate([{"prompt_token_ids": ids} for ids in encoded], greedy, lora_request=lora,
                               use_tqdm=False)
        seconds = time.perf_counter() - started
        found = []
        for task, output in zip(tasks, outputs):
            completion = output.outputs[0]
            tokens = list(completion.token_ids)
            while tokens and tokens[-1] in stops:
                tokens.pop()
            finish = "stop" if completion.finish_reason == "stop" else "length"
            found.append(answer_row(task, contestant.name, tokenizer.decode(tokens, skip_special_tokens=True),
                                    len(tokens), seconds, finish))
        losses[contestant.name] = _reference_loss(llm, references, lora)
        total = sum(r["tokens"] for r in found)
        speed[contestant.name] = {"tokens": total, "seconds": round(seconds, 3),
                                  "tokens_per_s": round(total / max(seconds, 1e-9), 2)}
        log(f"answers: {contestant.name} answered {len(found)} prompts, {total} tokens in {seconds:.1f} s (vLLM)")
        rows += found
    del llm
    release_memory()
    return rows, losses, speed


def _generation_eos(base: Path) -> int | list[int] | None:
    """The end-of-turn ids of the model's generation config, as the transformers path reads them."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(str(base)).eos_token_id
    except OSError:                  # no generation_config.json: the tokenizer's eos alone
        return None


def _reference_loss(llm: Any, references: list[Any], lora: Any) -> float | None:
    """Mean token loss of the references: minus the log-probability vLLM gives each answer token of the prompt."""
    from vllm import SamplingParams

    if not references:
        return None
    params = SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0)
    outputs = llm.generate([{"prompt_token_ids": r.input_ids} for r in references], params, lora_request=lora,
                           use_tqdm=False)
    total, count = 0.0, 0
    for reference, output in zip(references, outputs):
        for position, (token, label) in enumerate(zip(reference.input_ids, reference.labels)):
            if label == IGNORE or position == 0:
                continue
            total -= output.prompt_logprobs[position][token].logprob
            count += 1
    return total / max(count, 1)
