"""The precision stage of the novelty gate: decide whether two tasks in the borderline band are the same task.

A verifier has a `stage` name (recorded on every verdict it decides) and `same_task(pairs) -> list[bool]`.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from ..errors import FatalTeacherError, TeacherError
from ..prompts import render
from ..teacher.breaker import DEFAULT_MAX_OUTAGE


class LLMVerifier:
    """Asks a teacher LLM whether two tasks are the same task, through one long-lived teacher: its request cache,
    retries, rate limits, outage breaker and budget carry over from one batch of pairs to the next.

    The gate judges in a worker thread; the questions are asked on the event loop the teacher belongs to: the
    pipeline's own loop once `bind()` is called, or else a loop of the verifier's own, started on first use.
    """

    stage = "llm_verifier"

    def __init__(self, teacher: Any):
        self.teacher = teacher
        self.unclear = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def messages(a: str, b: str) -> list[dict[str, str]]:
        first, second = sorted((a.strip(), b.strip()))   # either order asks the same question, so one cache entry
        return [{"role": "user", "content": render("same_task", a=first, b=second)}]

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ask on `loop` (the caller's running loop) from now on."""
        self._loop = loop

    async def judge(self, pairs: list[tuple[str, str]]) -> list[bool]:
        """The verdicts for `pairs`, asked concurrently."""
        return list(await asyncio.gather(*(self._judge(a, b) for a, b in pairs)))

    def same_task(self, pairs: list[tuple[str, str]]) -> list[bool]:
        if not pairs:
            return []
        loop = self._loop or self._own_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("LLMVerifier.same_task blocks: call it from a worker thread, or await judge()")
        return asyncio.run_coroutine_threadsafe(self.judge(pairs), loop).result()

    def _own_loop(self) -> asyncio.AbstractEventLoop:
        if self._thread is None:
            loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=loop.run_forever, name="synth-verifier", daemon=True)
            self._thread.start()
            self._loop = loop
        assert self._loop is not None
        return self._loop

    async def _judge(self, a: str, b: str) -> bool:
        from ..generation.parsing import parse_yes_no

        try:
            completion = await self.teacher.complete(self.messages(a, b))
        except FatalTeacherError:
            raise
        except TeacherError:          # a verifier that cannot answer leaves the recall stage's acceptance standing
            return False
        answer = parse_yes_no(completion.text)
        if answer is None:
            self.unclear += 1
        return bool(answer)

    def usage(self) -> dict[str, float]:
        return {**self.teacher.usage.as_dict(), "unclear": self.unclear}

    def close(self) -> None:
        """Close the teacher's connections, and stop the verifier's own loop if it started one."""
        if self._thread is not None and self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.teacher.aclose(), self._loop).result()
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._thread = None


def llm_verifier(model: str, *, api_base: str | None = None, cache_path: str | Path | None = None,
                 budget=None, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 5,
                 input_cost: float | None = None, output_cost: float | None = None,
                 max_outage: float = DEFAULT_MAX_OUTAGE, cache=None) -> LLMVerifier:
    """An LLMVerifier over synth's litellm teacher: temperature 0, a few tokens per answer, a request cache (the
    one given, or one at `cache_path`). Its spending is booked as the "verifier" in the budget's ledger."""
    from ..teacher.cache import RequestCache
    from ..teacher.client import LiteLLMTeacher, TeacherOptions, check_api_key

    key = api_key if api_key is not None else check_api_key(model, api_base)
    if cache is None and cache_path:
        cache = RequestCache(Path(cache_path))
    options = TeacherOptions(model=model, api_base=api_base, temperature=0.0, max_tokens=16, timeout=timeout,
                             max_retries=max_retries, max_outage=max_outage, input_cost=input_cost,
                             output_cost=output_cost, purpose="verifier")
    return LLMVerifier(LiteLLMTeacher(options, cache=cache, budget=budget, api_key=key, check_key=False))


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
