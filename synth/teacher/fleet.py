"""A fleet of OpenAI-compatible servers serving one model (vLLM, SGLang, llama.cpp, Ollama), driven from one process at
the fleet's full capacity. The servers are the distributed engine; synth only routes.

Each request goes to the endpoint with the fewest requests in flight, weighted by that endpoint's measured latency,
so a slow or busy server gets less. An endpoint that keeps failing has its own small breaker: it is taken out for a
pause that doubles (0.5 s to 4 s), one probe goes to it when the pause ends, and it is put back on the first success,
while the others carry on. One endpoint is the plain case: the same code, a fleet of one.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from .pool import ClientPool

STREAK_OUT = 3                 # failures in a row that take an endpoint out
FIRST_PAUSE, MAX_PAUSE = 0.5, 4.0
EWMA = 0.2                     # weight of the newest latency in an endpoint's running estimate


@dataclass
class Endpoint:
    url: str
    pool: ClientPool
    inflight: int = 0
    requests: int = 0          # attempts that got a usable reply
    failures: int = 0          # attempts that failed (connection, 5xx, deadline)
    latency: float | None = None
    latency_sum: float = 0.0
    streak: int = 0
    out_until: float = 0.0
    pause: float = FIRST_PAUSE
    probing: bool = False
    outages: list[float] = field(default_factory=list)   # when it was taken out

    def stats(self) -> dict[str, Any]:
        return {"requests": self.requests, "failures": self.failures, "times_taken_out": len(self.outages),
                "mean_latency_s": round(self.latency_sum / self.requests, 4) if self.requests else None}


class Fleet:
    def __init__(self, urls: list[str], api_key: str | None, concurrency: int, timeout: float):
        self._settings = (api_key, concurrency, timeout)
        self.endpoints = [Endpoint(url, ClientPool(url, *self._settings)) for url in urls]
        self._retired: list[ClientPool] = []     # pools of endpoints taken out: their connections are stale

    def take(self) -> tuple[Endpoint, int, Any]:
        """(endpoint, shard, client) for the next attempt, counted as in flight until `done()`."""
        now = time.monotonic()
        ready = [e for e in self.endpoints if e.out_until <= now and not (e.streak >= STREAK_OUT and e.probing)]
        if ready:
            typical = statistics.median([e.latency for e in ready if e.latency is not None] or [1.0])
            endpoint = min(ready, key=lambda e: (e.inflight + 1) * (e.latency if e.latency is not None else typical))
        else:                  # every endpoint is out: the one due back first takes the attempt
            endpoint = min(self.endpoints, key=lambda e: e.out_until)
        if endpoint.streak >= STREAK_OUT:
            endpoint.probing = True
        shard, client = endpoint.pool.take()
        endpoint.inflight += 1
        return endpoint, shard, client

    def done(self, endpoint: Endpoint, shard: int, *, answered: bool, seconds: float, down: bool) -> None:
        """Book an attempt: `answered` (the server replied, usable or not) or `down` (it did not: connection,
        5xx, deadline); a down attempt counts towards taking the endpoint out."""
        endpoint.inflight -= 1
        endpoint.pool.give_back(shard)
        endpoint.probing = False
        if answered:
            endpoint.requests += 1
            endpoint.latency_sum += seconds
            endpoint.latency = seconds if endpoint.latency is None else (1 - EWMA) * endpoint.latency + EWMA * seconds
            endpoint.streak, endpoint.out_until, endpoint.pause = 0, 0.0, FIRST_PAUSE
        elif down:
            endpoint.failures += 1
            endpoint.streak += 1
            if endpoint.streak >= STREAK_OUT:
                now = time.monotonic()
                if endpoint.out_until <= now:
                    endpoint.outages.append(now)
                endpoint.out_until = now + endpoint.pause
                endpoint.pause = min(endpoint.pause * 2, MAX_PAUSE)
                endpoint.latency = None           # measured before it failed: it comes back as a typical server
                if endpoint.inflight == 0:        # a server that comes back gets fresh connections, not dead ones
                    self._retired.append(endpoint.pool)
                    endpoint.pool = ClientPool(endpoint.url, *self._settings)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {e.url: e.stats() for e in self.endpoints}

    async def aclose(self) -> None:
        for pool in self._retired + [e.pool for e in self.endpoints]:
            await pool.aclose()
