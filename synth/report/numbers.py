"""The report's numbers, from a run folder's files alone: counts, rates, lengths, diversity, shares, usage, and
the sections of `quality`, `methods` and `operations`."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from . import diversity as metrics
from . import evidence, methods, operations, quality
from ..gate.embeddings import Embedder
from .reading import RunData, load_run
from .vectors import Vectors

GATE_STAGES = ("filter", "novelty")


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 6) if values else None


def acceptance_over_run(accepted: list[dict], rejected: list[dict], window: int = 10) -> dict[str, Any]:
    """Per bootstrap prompt, tasks accepted over tasks proposed (filter and novelty rejections count as proposed);
    the rolling rate over `window` prompts shows whether the pool is running out of new tasks."""
    took, proposed = Counter(), Counter()
    for row in accepted:
        took[row.get("bootstrap_no", 0)] += 1
        proposed[row.get("bootstrap_no", 0)] += 1
    for row in rejected:
        if row.get("stage") in GATE_STAGES and "bootstrap_no" in row:
            proposed[row["bootstrap_no"]] += 1
    prompts = sorted(proposed)
    rolling = []
    for i, number in enumerate(prompts):
        span = prompts[max(0, i - window + 1): i + 1]
        rolling.append(round(sum(took[p] for p in span) / sum(proposed[p] for p in span), 4))
    total = sum(proposed.values())
    return {"bootstrap_prompts": prompts, "rolling_rate": rolling, "window": window,
            "overall": round(sum(took.values()) / total, 4) if total else None}


def collect(run: str | Path, *, embedder: Embedder | None = None, sample_size: int = 500, clusters: int = 20,
            seed: int = 0) -> dict[str, Any]:
    """The report's numbers for a run folder (what report.json holds)."""
    from .build import ReportConfig

    ReportConfig(sample_size=sample_size, clusters=clusters, seed=seed).validate()
    return summarize(load_run(run), embedder=embedder, sample_size=sample_size, clusters=clusters, seed=seed)


def summarize(data: RunData, *, embedder: Embedder | None = None, sample_size: int = 500, clusters: int = 20,
              seed: int = 0) -> dict[str, Any]:
    numbers = _basics(data)
    vectors = Vectors(data.path, data.config, embedder, data.notes)
    numbers["diversity"] = _diversity(data, vectors, sample_size, clusters, seed)
    numbers["quality"] = quality.numbers(data)
    numbers["methods"] = methods.numbers(data, vectors, sample_size=sample_size, clusters=clusters, seed=seed)
    numbers["operations"] = operations.numbers(data.manifest)
    numbers["evidence"] = evidence.numbers(data)
    numbers["notes"] = data.notes
    return numbers


def _basics(data: RunData) -> dict[str, Any]:
    records, rejected, accepted_tasks = data.records, data.rejected, data.accepted_tasks
    config, manifest = data.config, data.manifest
    threshold = config.get("novelty_threshold", 0.9)
    task_words = {r["task"]["id"]: metrics.words(r["task"]["instruction"]) for r in records}   # each task once
    response_words = [metrics.words(r["response"]) for r in records]
    usage = [(r["provenance"].get("usage") or {}).get("total_tokens", 0) for r in records]
    costs = [r["provenance"].get("cost_usd", 0.0) or 0.0 for r in records]
    run_usage = manifest.get("usage", {})
    run_tokens = run_usage.get("prompt_tokens", 0) + run_usage.get("completion_tokens", 0)
    return {
        "run": str(data.path),
        "counts": {
            "records": len(records), "tasks_in_records": len(task_words),
            "tasks_accepted": len(accepted_tasks),
            "rejected": dict(Counter(r.get("reason", "unknown") for r in rejected if r.get("kind") != "failed")),
            "failed": dict(Counter(r.get("reason", "unknown") for r in rejected if r.get("kind") == "failed")),
            "rejected_by_stage": dict(Counter(r.get("stage", "?") for r in rejected)),
            "schema_versions": {str(k): v for k, v in sorted(Counter(
                r["provenance"].get("schema_version", 1) for r in records).items())},
        },
        "acceptance": acceptance_over_run(accepted_tasks, rejected),
        "novelty": {
            "threshold": threshold,
            "decided_by": dict(Counter((t.get("novelty") or {}).get("stage", "embedding") for t in accepted_tasks)),
            "accepted_scores": metrics.histogram(
                [t["novelty"]["score"] for t in accepted_tasks if (t.get("novelty") or {}).get("score") is not None], 20, 0, 1),
            "rejected_scores": metrics.histogram(
                [r["score"] for r in rejected if r.get("stage") == "novelty" and r.get("score") is not None], 20, 0, 1),
        },
        "lengths_words": {
            "instruction": _length_summary([len(task_words[r["task"]["id"]]) for r in records]),
            "response": _length_summary([len(tokens) for tokens in response_words]),
        },
        "distinct": {
            "instruction": _distinct(list(task_words.values())),
            "response": _distinct(response_words),
        },
        "shares": {
            "system_message": _shares(r["system_message"]["id"] for r in records),
            "task_kind": _shares(r["task"].get("kind") or "unknown" for r in records),
        },
        "usage": {
            "tokens_per_record": _mean(usage), "cost_usd_per_record": _mean(costs),
            "run_tokens": run_tokens,
            "run_cost_usd": run_usage.get("total_cost_usd", run_usage.get("cost_usd", 0.0)),   # every teacher's
            "run_tokens_per_record": round(run_tokens / len(records), 2) if records else None,
        },
        "teachers": dict(Counter(r["provenance"].get("teacher", "?") for r in records)),
        "config": config,
        "manifest_status": manifest.get("status"),
    }


def _distinct(token_lists: list[list[str]]) -> dict[str, float]:
    return {f"distinct_{n}": round(value, 4) for n, value in metrics.distinct_ns(token_lists, (1, 2, 3)).items()}


def _length_summary(lengths: list[int]) -> dict[str, Any]:
    if not lengths:
        return {"mean": None, "median": None, "max": None, "histogram": metrics.histogram([], 20, 0, 1)}
    top = max(lengths)
    return {"mean": round(statistics.fmean(lengths), 2), "median": statistics.median(lengths), "max": top,
            "histogram": metrics.histogram(lengths, 20, 0, max(top, 1))}


def _shares(values) -> dict[str, float]:
    counts = Counter(values)
    total = sum(counts.values())
    return {k: round(v / total, 4) for k, v in counts.most_common()}


def _diversity(data: RunData, vectors: Vectors, sample_size: int, clusters: int, seed: int) -> dict[str, Any]:
    """Over the distinct task instructions of the records: pairwise distance and Vendi score on a fixed seeded
    sample, and how many k-means clusters of seeds + tasks the tasks occupy."""
    tasks = {r["task"]["id"]: r["task"]["instruction"] for r in data.records}
    ids, texts = list(tasks), list(tasks.values())
    rows = metrics.sample_rows(len(ids), sample_size, seed)
    sample = vectors.of([ids[i] for i in rows], [texts[i] for i in rows])
    seeds = data.seeds
    seed_vectors = vectors.of([s.id for s in seeds], [s.instruction for s in seeds]) if seeds else sample[:0]
    distance = metrics.mean_pairwise_cosine_distance(sample)
    vendi = metrics.vendi_score(sample) if len(sample) else None
    return {
        "sample_size": int(len(rows)), "sample_seed": seed,
        "mean_pairwise_cosine_distance": None if distance is None else round(distance, 4),
        "vendi_score": None if vendi is None else round(vendi, 3),
        "cluster_coverage": metrics.cluster_coverage(seed_vectors, sample, clusters, seed) if len(sample) else None,
        "reference": f"{len(seeds)} seed tasks + the sampled tasks",
    }
