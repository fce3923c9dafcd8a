"""An outage breaker shared by all requests to one teacher.

After `threshold` transient failures in a row (across all requests, and from at least two different
requests), the teacher is taken to be down: new attempts wait, and one probe at a time goes out, with the
pause doubling up to `max_pause`. The first success closes the breaker and every waiting request goes on.

Why two requests: one request that always fails, once the others are done, makes a streak of failures on
its own. That is its own problem, not an outage, so it must use up its retries like any other request.

While the breaker is open a failed probe is not counted against its request's retries, so an outage pauses
the run instead of failing it. The pause is bounded: once the breaker has stayed open for `max_outage`
seconds, every waiting attempt raises TeacherOutageError, which stops the run (it can be resumed).
"""

from __future__ import annotations

import asyncio
import time

from typing import Callable

from ..errors import StopRequested, TeacherOutageError

DEFAULT_MAX_OUTAGE = 600.0


class OutageBreaker:
    def __init__(self, threshold: int = 8, first_pause: float = 1.0, max_pause: float = 8.0,
                 max_outage: float = DEFAULT_MAX_OUTAGE, min_requests: int = 2):
        self.threshold = threshold
        self.first_pause = first_pause
        self.max_pause = max_pause
        self.max_outage = max_outage
        self.min_requests = min_requests
        self.consecutive_failures = 0
        self.streak_requests: set[str] = set()   # distinct requests in the current streak, up to min_requests
        self.open = False
        self.opened_at = 0.0
        self.last_reason = ""
        self.pause = first_pause
        self.next_probe_at = 0.0
        self.probing = False
        self.probes = 0
        self.outages = 0

    async def before_attempt(self, stopping: Callable[[], bool] = lambda: False) -> bool:
        """Wait while the breaker is open; returns True when this attempt is the probe. A stop ends the wait."""
        while self.open:
            if stopping():
                raise StopRequested("stopping: no more waiting for the teacher to come back")
            now = time.monotonic()
            if now - self.opened_at >= self.max_outage:
                raise TeacherOutageError(
                    "outage", f"the teacher failed every attempt for {self.max_outage:.0f}s "
                              f"(last: {self.last_reason or 'unknown'}); resume the run once it is back, "
                              "or raise --max-outage to wait longer")
            if not self.probing and now >= self.next_probe_at:
                self.probing = True
                self.probes += 1
                return True
            await asyncio.sleep(max(0.05, min(0.5, self.next_probe_at - now, self.opened_at + self.max_outage - now)))
        return False

    def record_success(self, probe: bool) -> None:
        self.consecutive_failures = 0
        self.streak_requests.clear()
        self.open = False
        self.pause = self.first_pause
        if probe:
            self.probing = False

    def record_failure(self, probe: bool, request: str = "", reason: str = "") -> None:
        self.consecutive_failures += 1
        self.last_reason = reason or self.last_reason
        if len(self.streak_requests) < self.min_requests:
            self.streak_requests.add(request)
        now = time.monotonic()
        if probe:
            self.probing = False
            self.pause = min(self.pause * 2, self.max_pause)
            self.next_probe_at = now + self.pause
        elif (not self.open and self.consecutive_failures >= self.threshold
              and len(self.streak_requests) >= self.min_requests):
            self.open = True
            self.opened_at = now
            self.outages += 1
            self.next_probe_at = now + self.pause
