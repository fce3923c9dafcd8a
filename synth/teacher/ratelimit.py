"""Client-side limits: rate limits that never exceed a provider's per-minute window, and a concurrency that adapts.

A leaky bucket of capacity `limit` lets `limit` requests through at once and then refills, so in the first minute it
sends up to twice the limit, which a provider counting requests over any 60 s window answers with 429s. This limiter
keeps the amounts sent in the last `period` seconds and waits until the new one fits: a burst up to the limit, then
exactly as fast as the window slides.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Callable

from ..errors import StopRequested


class WindowLimiter:
    def __init__(self, limit: int, period: float = 60.0):
        if limit < 1:
            raise ValueError("a rate limit must be at least 1")
        self.limit = limit
        self.period = period
        self._sent: deque[tuple[float, int]] = deque()
        self._used = 0
        self._turn = asyncio.Lock()           # first come, first served: a large request is not starved

    async def acquire(self, amount: int = 1, stopping: Callable[[], bool] = lambda: False) -> None:
        """Wait until `amount` more fits in the window (an amount over the limit counts as the limit); a stop
        ends the wait at once."""
        amount = max(1, min(amount, self.limit))
        async with self._turn:
            while True:
                now = time.monotonic()
                while self._sent and self._sent[0][0] <= now - self.period:
                    self._used -= self._sent.popleft()[1]
                if self._used + amount <= self.limit:
                    self._sent.append((now, amount))
                    self._used += amount
                    return
                if stopping():
                    raise StopRequested("stopping: no more waiting for the rate limit")
                await asyncio.sleep(min(self._sent[0][0] + self.period - now, 0.25))


# A refusal cuts the limit to 0.7 of itself, as TCP CUBIC does, not to half as TCP Reno does: against a provider's
# hidden limit the halving made the limit saw between about 3 and 6 when 6 was right (bench/RESULTS.md, "Adaptive
# concurrency").
CUT = 0.7


class AdaptiveLimit:
    """--concurrency auto: additive increase, multiplicative decrease, between `low` and `high` requests in flight.

    Each usable reply adds 1/limit (about one more request in flight per round of replies); a 429, a provider saying
    no requests remain in its window, or a latency that has doubled over the fastest seen (requests queueing on the
    server) cuts the limit to CUT of itself, at most once per latency interval so one burst of refusals counts once.
    --rpm and --tpm stay hard ceilings on top. `timeline` keeps (seconds since start, limit, in flight, replies)
    samples.
    """

    def __init__(self, start: int = 8, low: int = 1, high: int = 1024):
        self.low, self.high = low, high
        self.limit = float(max(low, min(start, high)))
        self.inflight = 0
        self.replies = 0
        self.fastest: float | None = None
        self.last_cut = 0.0
        self.started = time.monotonic()
        self.timeline: list[tuple[float, float, int, int]] = []
        self._waiters: deque[asyncio.Future] = deque()

    async def acquire(self, stopping: Callable[[], bool] = lambda: False) -> None:
        while self.inflight >= int(self.limit):
            if stopping():
                raise StopRequested("stopping: no more waiting for a free slot")
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, 0.25)     # a timed-out waiter is cancelled, and skipped when waking
            except asyncio.TimeoutError:
                pass
        self.inflight += 1

    def release(self, outcome: str, seconds: float | None = None, remaining: int | None = None) -> None:
        """`outcome`: "ok" (a usable reply), "throttled" (a 429) or "error" (anything else, which says nothing
        about the provider's capacity)."""
        self.inflight -= 1
        now = time.monotonic()
        if outcome == "throttled" or remaining == 0:
            self._cut(now, seconds)
        elif outcome == "ok" and seconds is not None:
            self.replies += 1
            self.fastest = seconds if self.fastest is None else min(self.fastest, seconds)
            if seconds > 2.0 * self.fastest + 0.05:
                self._cut(now, seconds, factor=0.9)
            else:
                self.limit = min(self.high, self.limit + 1.0 / self.limit)
        if not self.timeline or now - self.started - self.timeline[-1][0] >= 1.0:
            self.timeline.append((round(now - self.started, 2), round(self.limit, 2), self.inflight, self.replies))
        while self._waiters and self.inflight < int(self.limit):
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _cut(self, now: float, seconds: float | None, factor: float = CUT) -> None:
        if now - self.last_cut < max(seconds or 0.0, 0.5):
            return
        self.last_cut = now
        self.limit = max(float(self.low), self.limit * factor)
