"""An outage breaker shared by all requests to one teacher.

After `threshold` transient failures in a row (across all requests), the teacher is taken to be down:
new attempts wait, and one probe at a time goes out, with the pause doubling up to `max_pause`. The first
success closes the breaker and every waiting request goes on. A probe that fails is not counted against
its request's retries, so a long outage pauses the run instead of failing it.
"""

from __future__ import annotations

import asyncio
import time


class OutageBreaker:
    def __init__(self, threshold: int = 8, first_pause: float = 1.0, max_pause: float = 8.0):
        self.threshold = threshold
        self.first_pause = first_pause
        self.max_pause = max_pause
        self.consecutive_failures = 0
        self.open = False
        self.pause = first_pause
        self.next_probe_at = 0.0
        self.probing = False
        self.probes = 0
        self.outages = 0

    async def before_attempt(self) -> bool:
        """Wait while the breaker is open; returns True when this attempt is the probe."""
        while self.open:
            now = time.monotonic()
            if not self.probing and now >= self.next_probe_at:
                self.probing = True
                self.probes += 1
                return True
            await asyncio.sleep(max(0.05, min(0.5, self.next_probe_at - now)))
        return False

    def record_success(self, probe: bool) -> None:
        self.consecutive_failures = 0
        self.open = False
        self.pause = self.first_pause
        if probe:
            self.probing = False

    def record_failure(self, probe: bool) -> None:
        self.consecutive_failures += 1
        now = time.monotonic()
        if probe:
            self.probing = False
            self.pause = min(self.pause * 2, self.max_pause)
            self.next_probe_at = now + self.pause
        elif not self.open and self.consecutive_failures >= self.threshold:
            self.open = True
            self.outages += 1
            self.next_probe_at = now + self.pause
