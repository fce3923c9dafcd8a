"""The novelty gate as the pipeline's async loop sees it: checks that arrive while one is running are judged
together in the next one.

Each bootstrap reply brings a handful of candidate tasks. Embedding them one reply at a time pays the embedder's
per-call cost again and again and keeps accepted tasks waiting behind each other; embedding every queued reply in one
call pays it once. The result is the same as checking the replies one after another in arrival order, because the
gate judges a batch in order and lets each accepted item join the pool before the next one is judged.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:                           # faiss loads only when a gate is built
    from .novelty import NoveltyGate, Verdict


class GateQueue:
    def __init__(self, gate: NoveltyGate, on_time: Callable[[float], None] | None = None):
        self.gate = gate
        self.on_time = on_time
        self.calls = 0                      # gate.check calls made, for tests and the manifest
        self._waiting: list[tuple[list[str], list[str], asyncio.Future]] = []
        self._worker: asyncio.Task | None = None

    async def check(self, ids: list[str], texts: list[str]) -> list[Verdict]:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((list(ids), list(texts), future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            ids = [i for item_ids, _, _ in batch for i in item_ids]
            texts = [t for _, item_texts, _ in batch for t in item_texts]
            started = time.perf_counter()
            try:
                verdicts = await asyncio.to_thread(self.gate.check, ids, texts)
            except BaseException as exc:    # every waiting check hears of it; nothing is left hanging
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            finally:
                self.calls += 1
                if self.on_time is not None:
                    self.on_time(time.perf_counter() - started)
            at = 0
            for item_ids, _, future in batch:
                if not future.done():
                    future.set_result(verdicts[at: at + len(item_ids)])
                at += len(item_ids)
