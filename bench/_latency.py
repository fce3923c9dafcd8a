"""The throughput benchmark's teacher: log-normal latency (median 0.8 s, about 1% over 10 s), 2% of attempts
answered 429 with Retry-After, replies of about 300 tokens. Stdlib only, so every benchmark venv can import it.

Latency and rate limiting are functions of the query (the last user message) and the attempt number, not of the
whole request body: every system sends its own system prompt and parameters, and each must still meet exactly the
same slow queries, or their rates would not compare.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random

MEDIAN_S = 0.8
SIGMA = math.log(10 / MEDIAN_S) / 2.326          # P(latency > 10 s) = 1%
RATE_LIMITED = 0.02
RETRY_AFTER_S = 1.0
ANSWER = ("Let us reason about this carefully. " * 40).strip()   # about 300 tokens


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256(":".join(map(str, parts)).encode()).digest())


def query_of(body: dict) -> str:
    users = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
    return (users[-1] if users else "").strip()


def latency_for(query: str) -> float:
    return MEDIAN_S * math.exp(SIGMA * _rng("latency", query).gauss(0.0, 1.0))


def rate_limited(query: str, attempt: int) -> bool:
    return _rng("429", query, attempt).random() < RATE_LIMITED


def ideal_makespan(queries: list[str], concurrency: int) -> float:
    """The wall time of an ideal client: `concurrency` slots, no overhead of its own, queries sent in file order,
    a slot never idle while a query is ready, and a 429's Retry-After waited out without holding a slot.
    A client that sends each query in order at this concurrency cannot finish sooner."""
    ready = [(0.0, i, 1) for i in range(len(queries))]    # (ready at, order, attempt)
    heapq.heapify(ready)
    slots = [0.0] * concurrency                           # when each slot is next free
    end = 0.0
    while ready:
        at, i, attempt = heapq.heappop(ready)
        start = max(at, heapq.heappop(slots))
        if rate_limited(queries[i], attempt):
            heapq.heappush(slots, start)
            heapq.heappush(ready, (start + RETRY_AFTER_S, i, attempt + 1))
            continue
        finish = start + latency_for(queries[i])
        heapq.heappush(slots, finish)
        end = max(end, finish)
    return end


def make_script(server_module):
    Reply, Fault = server_module.Reply, server_module.Fault

    def script(body: dict, attempt: int):
        query = query_of(body)
        if rate_limited(query, attempt):
            return Fault("status", status=429, headers={"Retry-After": str(int(RETRY_AFTER_S))},
                         error_type="rate_limit_exceeded", error_code="rate_limit_exceeded")
        return Reply(ANSWER, completion_tokens=300, delay=latency_for(query))

    return script
