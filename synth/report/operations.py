"""How the run talked to its teachers, from the manifest: per endpoint of a fleet, `--concurrency auto`'s limit and
throughput over time, and `--batch`'s jobs with what the same requests would have cost online."""

from __future__ import annotations

from typing import Any


def numbers(manifest: dict[str, Any]) -> dict[str, Any]:
    return {"endpoints": _endpoints(manifest.get("endpoints")), "concurrency": _concurrency(manifest.get("concurrency")),
            "batch": _batch(manifest.get("batch"))}


def _endpoints(endpoints: dict[str, dict[str, Any]] | None) -> dict[str, Any] | None:
    """A fleet's endpoints with each one's share of the requests; None for a single teacher."""
    if not endpoints:
        return None
    total = sum(stats.get("requests", 0) for stats in endpoints.values())
    return {url: {**stats, "share": round(stats.get("requests", 0) / total, 4) if total else None}
            for url, stats in endpoints.items()}


def _concurrency(concurrency: dict[str, Any] | None) -> dict[str, Any] | None:
    """The adaptive limit's timeline, and the throughput between its samples (replies per second): the manifest
    keeps (seconds, limit, in flight, replies so far) about once a second, the last 600 samples of the session."""
    if not concurrency:
        return None
    timeline = concurrency.get("timeline", [])
    seconds = [point[0] for point in timeline]
    throughput = [None] + [round((b[3] - a[3]) / (b[0] - a[0]), 3) if b[0] > a[0] and b[3] >= a[3] else None
                           for a, b in zip(timeline, timeline[1:])]
    rates = [r for r in throughput if r is not None]
    span = seconds[-1] - seconds[0] if len(seconds) > 1 else 0
    return {"final": concurrency.get("final"), "samples": len(timeline), "seconds": seconds,
            "limit": [point[1] for point in timeline], "in_flight": [point[2] for point in timeline],
            "throughput": throughput, "peak_limit": max((p[1] for p in timeline), default=None),
            "mean_throughput": round((timeline[-1][3] - timeline[0][3]) / span, 3) if span > 0 else None,
            "peak_throughput": max(rates, default=None)}


def _batch(batch: dict[str, Any] | None) -> dict[str, Any] | None:
    """--batch's jobs, and the batch cost against the online equivalent of the same requests."""
    if not batch:
        return None
    online, cost = batch.get("online_equivalent_usd"), batch.get("cost_usd")
    return {**batch, "saved_usd": round(online - cost, 6) if online is not None and cost is not None else None,
            "cost_ratio": round(cost / online, 4) if online and cost is not None else None}
