"""The report's numbers, from a run folder's files alone: counts, rates, lengths, diversity, shares, usage."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..embeddings import Embedder, EmbeddingStore, shared_embedder
from ..errors import RunFolderError
from ..jsonl import read_complete_lines
from ..runfolder import CONFIG, DATA, MANIFEST, REJECTED, TASKS

GATE_FOLDER = "gate"           # where a run keeps its gate's vectors (see NoveltyGate(store=...))
GATE_STAGES = ("filter", "novelty")


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


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


def _vectors(run: Path, ids: list[str], texts: list[str], embedder: Embedder | None) -> np.ndarray:
    """Vectors for the texts: from the run's gate store where it has them, embedded otherwise."""
    found: dict[str, np.ndarray] = {}
    meta = _json(run / GATE_FOLDER / EmbeddingStore.META)
    if meta:
        store_ids, _, vectors = EmbeddingStore(run / GATE_FOLDER, meta["embedder"], meta["dim"]).load()
        wanted = set(ids)
        found = {i: v for i, v in zip(store_ids, vectors) if i in wanted}
    missing = [k for k, i in enumerate(ids) if i not in found]
    if missing:
        embedder = embedder or shared_embedder(meta.get("embedder") or _json(run / CONFIG).get("embedder") or
                                               "bundled:all-MiniLM-L6-v2")
        for k, vector in zip(missing, embedder.encode([texts[k] for k in missing])):
            found[ids[k]] = vector
    if not ids:
        return np.zeros((0, 1), dtype=np.float32)
    return np.stack([found[i] for i in ids]).astype(np.float32)


def collect(run: str | Path, *, embedder: Embedder | None = None, sample_size: int = 500, clusters: int = 20,
            seed: int = 0) -> dict[str, Any]:
    run = Path(run)
    if not (run / DATA).is_file() and not (run / CONFIG).is_file():
        raise RunFolderError(f"{run} is not a synth run folder (no {DATA} or {CONFIG})")
    config, manifest = _json(run / CONFIG), _json(run / MANIFEST)
    records = list(read_complete_lines(run / DATA))
    rejected = list(read_complete_lines(run / REJECTED))
    accepted_tasks = [row for row in read_complete_lines(run / TASKS) if row.get("status") == "accepted"]
    threshold = config.get("novelty_threshold", 0.9)

    instructions = [r["task"]["instruction"] for r in records]
    responses = [r["response"] for r in records]
    tasks = {r["task"]["id"]: r["task"]["instruction"] for r in records}
    usage = [r["provenance"].get("usage", {}).get("total_tokens", 0) for r in records]
    costs = [r["provenance"].get("cost_usd", 0.0) or 0.0 for r in records]
    run_usage = manifest.get("usage", {})

    numbers: dict[str, Any] = {
        "run": str(run),
        "counts": {
            "records": len(records), "tasks_in_records": len(tasks),
            "tasks_accepted": len(accepted_tasks),
            "rejected": dict(Counter(r["reason"] for r in rejected if r.get("kind") != "failed")),
            "failed": dict(Counter(r["reason"] for r in rejected if r.get("kind") == "failed")),
            "rejected_by_stage": dict(Counter(r.get("stage", "?") for r in rejected)),
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
            "instruction": _length_summary([len(metrics.words(t)) for t in instructions]),
            "response": _length_summary([len(metrics.words(t)) for t in responses]),
        },
        "distinct": {
            "instruction": {f"distinct_{n}": round(metrics.distinct_n(list(tasks.values()), n), 4) for n in (1, 2, 3)},
            "response": {f"distinct_{n}": round(metrics.distinct_n(responses, n), 4) for n in (1, 2, 3)},
        },
        "shares": {
            "system_message": _shares(r["system_message"]["id"] for r in records),
            "task_kind": _shares(r["task"].get("kind") or "unknown" for r in records),
        },
        "usage": {
            "tokens_per_record": _mean(usage), "cost_usd_per_record": _mean(costs),
            "run_tokens": run_usage.get("prompt_tokens", 0) + run_usage.get("completion_tokens", 0),
            "run_cost_usd": run_usage.get("total_cost_usd", run_usage.get("cost_usd", 0.0)),   # verifier included
            "run_tokens_per_record": round((run_usage.get("prompt_tokens", 0) + run_usage.get("completion_tokens", 0))
                                           / len(records), 2) if records else None,
        },
        "teachers": dict(Counter(r["provenance"].get("teacher", "?") for r in records)),
        "config": config,
        "manifest_status": manifest.get("status"),
    }
    numbers["diversity"] = _diversity(run, config, tasks, embedder, sample_size, clusters, seed)
    return numbers


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


def _diversity(run: Path, config: dict, tasks: dict[str, str], embedder, sample_size: int, clusters: int,
               seed: int) -> dict[str, Any]:
    """Over the distinct task instructions of the records: pairwise distance and Vendi score on a fixed seeded
    sample, and how many k-means clusters of seeds + tasks the tasks occupy."""
    from ..seeds import load_seeds

    ids, texts = list(tasks), list(tasks.values())
    rows = metrics.sample_rows(len(ids), sample_size, seed)
    vectors = _vectors(run, [ids[i] for i in rows], [texts[i] for i in rows], embedder)
    try:
        seeds = load_seeds(config.get("seeds"))
    except Exception:      # the seed file moved since the run: report without the reference clusters
        seeds = []
    seed_vectors = _vectors(run, [s.id for s in seeds], [s.instruction for s in seeds], embedder) if seeds else vectors[:0]
    distance = metrics.mean_pairwise_cosine_distance(vectors)
    vendi = metrics.vendi_score(vectors) if len(vectors) else None
    return {
        "sample_size": int(len(rows)), "sample_seed": seed,
        "mean_pairwise_cosine_distance": None if distance is None else round(distance, 4),
        "vendi_score": None if vendi is None else round(vendi, 3),
        "cluster_coverage": metrics.cluster_coverage(seed_vectors, vectors, clusters, seed) if len(vectors) else None,
        "reference": f"{len(seeds)} seed tasks + the sampled tasks",
    }
