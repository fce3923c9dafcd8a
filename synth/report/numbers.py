"""The report's numbers, from a run folder's files alone: counts, rates, lengths, diversity, shares, usage."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from . import diversity as metrics
from ..gate.embeddings import DEFAULT_EMBEDDER, Embedder, EmbeddingStore, shared_embedder
from ..errors import InputFileError, RunFolderError
from ..formats import read_rows
from . import checks
from ..generation.runfolder import CONFIG, DATA, MANIFEST, REJECTED, TASKS

GATE_FOLDER = "gate"           # where a run keeps its gate's vectors (see NoveltyGate(store=...))
GATE_STAGES = ("filter", "novelty")


JSON_KINDS = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "true or false", type(None): "null"}
MOVE_ASIDE = "fix it, or move it aside to report without it"
FIX_LINE = "synth report reads the run folders synth generate writes: fix or delete that line"


def _settled(rejected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rejections and failures that still stand: a failure a later session answered ("retried") is gone."""
    retried = {row["id"] for row in rejected if row["kind"] == "retried"}
    return [row for row in rejected if row["kind"] != "retried" and row["id"] not in retried]


def _json(path: Path, advice: str = MOVE_ASIDE, check=None) -> dict[str, Any]:
    """A JSON object file of the run folder; {} when there is none."""
    if not path.is_file():
        return {}
    advice = f"; {advice}" if advice else ""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        why = f"{exc.msg}: line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
        raise InputFileError(path, f"not valid JSON ({why}){advice}") from None
    if not isinstance(value, dict):
        raise InputFileError(path, f"holds {JSON_KINDS[type(value)]}, not a JSON object{advice}")
    problem = check(value) if check else None
    if problem:
        raise InputFileError(path, f"{problem}{advice}")
    return value


def _rows(path: Path, problem=None, notes: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows of a run's JSONL file, through the formats reader: a last line cut short by a crash is skipped
    with a note; any other line that is not a row synth wrote is an error naming it."""
    if not path.is_file():
        return []
    rows = []
    for row in read_rows(path, allow_empty=True, warn=notes.append if notes is not None else None):
        why = problem(row.data) if problem else None
        if why:
            raise row.error(f"{why}; {FIX_LINE}")
        rows.append(row.data)
    return rows


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


def _stored_vectors(folder: Path, embedder: Embedder | None, notes: list[str]
                    ) -> tuple[dict[str, np.ndarray], str | None]:
    """The vectors a run's gate saved, by id, and the embedder that made them; nothing when there are none, or
    when they come from another embedder than the one given. Opened read-only: a report never writes into a run."""
    meta = _json(folder / EmbeddingStore.META, "")
    if not meta:
        return {}, None
    name, dim = meta.get("embedder"), meta.get("dim")
    if not isinstance(name, str) or type(dim) is not int or dim < 1:
        raise InputFileError(folder / EmbeddingStore.META, "lacks the embedder's name or dimension")
    if embedder is not None and (embedder.name, embedder.dim) != (name, dim):
        return {}, None
    ids, _, vectors, bad = EmbeddingStore(folder, name, dim, writable=False).load()
    if bad:
        notes.append(f"{folder / EmbeddingStore.VECTORS}: {len(bad)} of {len(ids)} saved vectors are missing or "
                     "damaged; the report embedded those tasks afresh (synth generate --resume repairs the file)")
    skip = set(bad)
    return {item_id: vectors[i] for i, item_id in enumerate(ids) if i not in skip}, name


def _gate_vectors(run: Path, embedder: Embedder | None, notes: list[str]) -> tuple[dict[str, np.ndarray], str | None]:
    """The gate store's vectors, or none with a note when it cannot be read: the store is a cache of embeddings,
    not the data, so the report embeds the tasks afresh rather than stopping."""
    try:
        return _stored_vectors(run / GATE_FOLDER, embedder, notes)
    except (InputFileError, RunFolderError) as exc:
        notes.append(f"{exc}; embedded the tasks afresh instead (move {run / GATE_FOLDER} aside and "
                     "synth generate --resume rebuilds it)")
        return {}, None


def _vectors(ids: list[str], texts: list[str], stored: dict[str, np.ndarray], embedder: Embedder | str) -> np.ndarray:
    """Vectors for the texts: stored ones where there are, embedded otherwise."""
    found = {i: stored[i] for i in ids if i in stored}
    missing = [k for k, i in enumerate(ids) if i not in found]
    if missing:
        embedder = shared_embedder(embedder) if isinstance(embedder, str) else embedder
        for k, vector in zip(missing, embedder.encode([texts[k] for k in missing])):
            found[ids[k]] = vector
    if not ids:
        return np.zeros((0, 1), dtype=np.float32)
    return np.stack([found[i] for i in ids]).astype(np.float32)


def collect(run: str | Path, *, embedder: Embedder | None = None, sample_size: int = 500, clusters: int = 20,
            seed: int = 0) -> dict[str, Any]:
    from .build import ReportConfig

    ReportConfig(sample_size=sample_size, clusters=clusters, seed=seed).validate()
    run = Path(run)
    notes: list[str] = []        # what the reader of the report should know: a cut line, a cache not used
    if not (run / DATA).is_file() and not (run / CONFIG).is_file():
        raise RunFolderError(f"{run} is not a synth run folder (no {DATA} or {CONFIG})")
    config, manifest = _json(run / CONFIG, check=checks.config), _json(run / MANIFEST, check=checks.manifest)
    records = _rows(run / DATA, checks.record, notes)
    rejected = _settled(_rows(run / REJECTED, checks.rejected, notes))
    accepted_tasks = [row for row in _rows(run / TASKS, checks.task, notes) if row["status"] == "accepted"]
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
            "rejected": dict(Counter(r.get("reason", "unknown") for r in rejected if r.get("kind") != "failed")),
            "failed": dict(Counter(r.get("reason", "unknown") for r in rejected if r.get("kind") == "failed")),
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
    numbers["notes"] = notes
    numbers["diversity"] = _diversity(run, config, tasks, embedder, sample_size, clusters, seed, numbers["notes"])
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
               seed: int, notes: list[str]) -> dict[str, Any]:
    """Over the distinct task instructions of the records: pairwise distance and Vendi score on a fixed seeded
    sample, and how many k-means clusters of seeds + tasks the tasks occupy."""
    from ..generation.seeds import load_seeds

    stored, stored_by = _gate_vectors(run, embedder, notes)
    embed_with = embedder if embedder is not None else stored_by or config.get("embedder") or DEFAULT_EMBEDDER
    ids, texts = list(tasks), list(tasks.values())
    rows = metrics.sample_rows(len(ids), sample_size, seed)
    vectors = _vectors([ids[i] for i in rows], [texts[i] for i in rows], stored, embed_with)
    try:
        seeds = load_seeds(config.get("seeds"))
    except Exception:      # the seed file moved since the run: report without the reference clusters
        seeds = []
    seed_vectors = _vectors([s.id for s in seeds], [s.instruction for s in seeds], stored, embed_with) if seeds else vectors[:0]
    distance = metrics.mean_pairwise_cosine_distance(vectors)
    vendi = metrics.vendi_score(vectors) if len(vectors) else None
    return {
        "sample_size": int(len(rows)), "sample_seed": seed,
        "mean_pairwise_cosine_distance": None if distance is None else round(distance, 4),
        "vendi_score": None if vendi is None else round(vendi, 3),
        "cluster_coverage": metrics.cluster_coverage(seed_vectors, vectors, clusters, seed) if len(vectors) else None,
        "reference": f"{len(seeds)} seed tasks + the sampled tasks",
    }
