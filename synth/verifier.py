"""The precision stage of the novelty gate: decide whether two tasks in the borderline band are the same task.

A verifier has a `stage` name (recorded on every verdict it decides) and `same_task(pairs) -> list[bool]`.
"""

from __future__ import annotations

from pathlib import Path

from .breaker import DEFAULT_MAX_OUTAGE
from .prompts import render


class LLMVerifier:
    """Asks a teacher LLM whether two tasks are the same task. Replies are cached through the teacher's request
    cache and costed into its budget; each call of `same_task` runs its requests concurrently.

    `make_teacher` builds a fresh teacher for each call, because the calls run on a short-lived event loop of
    their own (the gate is used from worker threads) and a teacher's limiters belong to one loop.
    """

    stage = "llm_verifier"

    def __init__(self, make_teacher):
        self.make_teacher = make_teacher
        self.calls = self.cached_calls = self.prompt_tokens = self.completion_tokens = self.failures = 0
        self.unclear = 0
        self.cost = 0.0

    @staticmethod
    def messages(a: str, b: str) -> list[dict[str, str]]:
        first, second = sorted((a.strip(), b.strip()))   # either order asks the same question, so one cache entry
        return [{"role": "user", "content": render("same_task", a=first, b=second)}]

    def same_task(self, pairs: list[tuple[str, str]]) -> list[bool]:
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._judge_all(pairs))
        with ThreadPoolExecutor(1) as pool:      # called from inside a running loop: judge on a loop of our own
            return pool.submit(asyncio.run, self._judge_all(pairs)).result()

    async def _judge_all(self, pairs: list[tuple[str, str]]) -> list[bool]:
        import asyncio

        teacher = self.make_teacher()
        try:
            return list(await asyncio.gather(*(self._judge(teacher, a, b) for a, b in pairs)))
        finally:
            usage = teacher.usage
            self.calls += usage.calls
            self.cached_calls += usage.cached_calls
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.cost += usage.cost

    async def _judge(self, teacher, a: str, b: str) -> bool:
        from .errors import FatalTeacherError, TeacherError
        from .parsing import parse_yes_no

        try:
            completion = await teacher.complete(self.messages(a, b))
        except FatalTeacherError:
            raise
        except TeacherError:          # a verifier that cannot answer leaves the recall stage's acceptance standing
            self.failures += 1
            return False
        answer = parse_yes_no(completion.text)
        if answer is None:
            self.unclear += 1
        return bool(answer)

    def usage(self) -> dict[str, float]:
        return {"calls": self.calls, "cached_calls": self.cached_calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": round(self.cost, 6),
                "failures": self.failures, "unclear": self.unclear}


def llm_verifier(model: str, *, api_base: str | None = None, cache_path: str | Path | None = None,
                 budget=None, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 5,
                 input_cost: float | None = None, output_cost: float | None = None,
                 max_outage: float = DEFAULT_MAX_OUTAGE) -> LLMVerifier:
    """An LLMVerifier over synth's litellm teacher: temperature 0, a few tokens per answer, a shared request cache.
    Its spending is booked as the "verifier" in the budget's ledger."""
    from .cache import RequestCache
    from .teacher import LiteLLMTeacher, TeacherOptions, check_api_key

    key = api_key if api_key is not None else check_api_key(model, api_base)
    cache = RequestCache(Path(cache_path)) if cache_path else None
    options = TeacherOptions(model=model, api_base=api_base, temperature=0.0, max_tokens=16, timeout=timeout,
                             max_retries=max_retries, max_outage=max_outage, input_cost=input_cost,
                             output_cost=output_cost, purpose="verifier")
    return LLMVerifier(lambda: LiteLLMTeacher(options, cache=cache, budget=budget, api_key=key, check_key=False))


class EmbeddingVerifier:
    """A second, stronger embedder as the precision stage: the same task when its cosine reaches `threshold`."""

    stage = "second_embedder"

    def __init__(self, embedder, threshold: float):
        self.embedder, self.threshold = embedder, threshold

    def same_task(self, pairs: list[tuple[str, str]]) -> list[bool]:
        if not pairs:
            return []
        left = self.embedder.encode([a for a, _ in pairs])
        right = self.embedder.encode([b for _, b in pairs])
        return [bool(s >= self.threshold) for s in (left * right).sum(axis=1)]
