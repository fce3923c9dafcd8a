"""Client-side rate limits that never exceed a provider's per-minute window.

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
