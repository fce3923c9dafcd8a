"""The throughput benchmark's teacher: log-normal latency (median 0.8 s, about 1% over 10 s), 2% of attempts
answered 429 with Retry-After, replies of about 300 tokens. Stdlib only, so every benchmark venv can import it."""

from __future__ import annotations

import hashlib
import math
import random

MEDIAN_S = 0.8
SIGMA = math.log(10 / MEDIAN_S) / 2.326          # P(latency > 10 s) = 1%
RATE_LIMITED = 0.02
ANSWER = ("Let us reason about this carefully. " * 40).strip()   # about 300 tokens


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha256(":".join(map(str, parts)).encode()).digest())


def latency_for(key: str) -> float:
    return MEDIAN_S * math.exp(SIGMA * _rng("latency", key).gauss(0.0, 1.0))


def make_script(server_module):
    Reply, Fault, request_key = server_module.Reply, server_module.Fault, server_module.request_key

    def script(body: dict, attempt: int):
        key = request_key(body)
        if _rng("429", key, attempt).random() < RATE_LIMITED:
            return Fault("status", status=429, headers={"Retry-After": "1"}, error_type="rate_limit_exceeded",
                         error_code="rate_limit_exceeded")
        return Reply(ANSWER, completion_tokens=300, delay=latency_for(key))

    return script
