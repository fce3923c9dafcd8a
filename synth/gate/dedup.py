"""`synth dedup`: drop the duplicates from an existing instruction dataset, each with a reason and the kept item.

Three passes in one stream: exact text duplicates, then duplicates after case and whitespace folding, then the
novelty gate (the same component `generate` uses) for near-duplicates and, with a verifier, same-task
paraphrases. Reads Alpaca JSON, ShareGPT, OpenAI chat, synth records and plain JSONL (optionally gzipped).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ..teacher.breaker import DEFAULT_MAX_OUTAGE
from .embeddings import DEFAULT_EMBEDDER, Embedder, shared_embedder
from ..errors import ConfigError, TeacherOutageError
from ..formats import ShapeError, Warn, example, read_rows, write_rows
from ..files import refuse_overlap
from ..settings import Settings, setting
from typing import TYPE_CHECKING

if TYPE_CHECKING:       # faiss loads only when a gate is built
    from .novelty import NoveltyGate, Verifier
from .verifier import llm_verifier

REASONS = ("exact_duplicate", "normalized_duplicate", "near_duplicate", "same_task")


@dataclass
class Item:
    id: str
    text: str
    row: dict[str, Any]
    line: int                     # 1-based line (JSONL) or position (JSON array) in the input


@dataclass
class DedupConfig(Settings):
    command: ClassVar[str] = "dedup"

    threshold: float = setting(0.9, "Drop an item this cosine-similar to a kept one.", min=0, min_open=True, max=1)
    recall_threshold: float | None = setting(None, "Lower edge of the band a --verifier judges (default 0.4 with a "
                                                   "verifier).", min=0, max=1)
    top_k: int = setting(3, "Nearest kept items each item is compared with.", min=1, max=100)
    embedder: str = setting(DEFAULT_EMBEDDER, "sentence-transformers model name or folder (default: bundled MiniLM).")
    index: str = setting("auto", "auto (exact search up to 1M items), flat or hnsw.", choices=("auto", "flat", "hnsw"))
    field: str | None = setting(None, "Compare this field of each row instead of the detected prompt.")
    batch_size: int = setting(256, "Items embedded and judged together.", min=1, max=1_000_000)
    verifier_model: str | None = setting(None, "litellm model that judges borderline pairs (same task or not).",
                                         flag="--verifier")
    api_base: str | None = setting(None, "OpenAI-compatible base URL for the --verifier model.")
    cache: str | None = setting(None, "Request cache for the verifier's answers (default OUT.cache.sqlite).")
    timeout: float = setting(60.0, "Hard deadline in seconds for one verifier request attempt.", min=0, min_open=True)
    max_retries: int = setting(5, "Retries per verifier request on 408/409/429/5xx/connection errors.", min=0, max=100)
    max_outage: float = setting(DEFAULT_MAX_OUTAGE, "Seconds the verifier may fail every attempt before dedup stops "
                                                    "(exit 4).", min=0, min_open=True)

    def checks(self) -> list[str]:
        if self.recall_threshold is not None and self.recall_threshold > self.threshold:
            return ["--recall-threshold must be at most --threshold"]
        return []


@dataclass
class DedupResult:
    total: int
    kept: int
    dropped: Counter = field(default_factory=Counter)
    out: str = ""
    dropped_path: str = ""
    verifier_usage: dict[str, Any] | None = None


# ---- reading -------------------------------------------------------------------------------------

def read_dataset(path: str | Path, field_name: str | None = None, warn: Warn | None = None) -> list[Item]:
    """Every row of `path` with the text to compare: the prompt of its first example, or the named field."""
    items, seen_ids = [], set()
    for row in read_rows(path, warn=warn):
        try:
            text = example(row.data, field_name).prompt
        except ShapeError as exc:
            raise row.error(f"no text to compare: {exc}") from None
        number = row.line if row.line is not None else row.index
        row_id = row.data.get("id")
        item_id = str(row_id) if isinstance(row_id, (str, int)) and not isinstance(row_id, bool) else f"row-{number}"
        if item_id in seen_ids:
            item_id = f"{item_id}@{number}"
        seen_ids.add(item_id)
        items.append(Item(item_id, text, row.data, number))
    return items


# ---- the passes ----------------------------------------------------------------------------------

def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def cheap_duplicates(items: list[Item]) -> tuple[list[Item], list[dict[str, Any]]]:
    """Drop exact and case/whitespace-folded repeats; the first occurrence is kept."""
    exact: dict[str, str] = {}
    folded: dict[str, str] = {}
    kept, dropped = [], []
    for item in items:
        key = normalize(item.text)
        if item.text in exact:
            dropped.append(_drop(item, "exact_duplicate", "exact", exact[item.text], 1.0))
        elif key in folded:
            dropped.append(_drop(item, "normalized_duplicate", "normalized", folded[key], 1.0))
        else:
            exact[item.text] = folded[key] = item.id
            kept.append(item)
    return kept, dropped


def _drop(item: Item, reason: str, stage: str, kept_id: str | None, score: float | None) -> dict[str, Any]:
    return {"id": item.id, "line": item.line, "reason": reason, "stage": stage, "kept_id": kept_id,
            "score": None if score is None else round(float(score), 4), "text": item.text}


def build_gate(config: DedupConfig, embedder: Embedder | None = None, verifier: Verifier | None = None) -> NoveltyGate:
    from .novelty import NoveltyGate

    config.validate()
    if verifier is None and config.verifier_model:
        verifier = StopWhenVerifierIsDown(llm_verifier(
            config.verifier_model, api_base=config.api_base, cache_path=config.cache, timeout=config.timeout,
            max_retries=config.max_retries, max_outage=config.max_outage))
    recall = config.recall_threshold
    if verifier is not None and recall is None:
        recall = RECOMMENDED_RECALL_THRESHOLD
    return NoveltyGate(embedder or shared_embedder(config.embedder), config.threshold, recall_threshold=recall,
                       top_k=config.top_k, verifier=verifier, index=config.index)


RECOMMENDED_RECALL_THRESHOLD = 0.4   # see bench/RESULTS.md, "Novelty gate"


class StopWhenVerifierIsDown:
    """An LLMVerifier that stops dedup when it has never answered. A pair the verifier cannot judge is kept,
    which is right for a failure now and then; against a dead endpoint it would retry every pair, one batch of
    calls after another, and in the end keep them all."""

    def __init__(self, inner):
        self.inner = inner
        self.stage = inner.stage

    def same_task(self, pairs: list[tuple[str, str]]) -> list[bool]:
        verdicts = self.inner.same_task(pairs)
        usage = self.inner.usage()
        live_calls = usage["calls"] - usage["cached_calls"]
        if usage["failures"] and usage["failures"] == live_calls:
            raise TeacherOutageError("verifier_down", f"the verifier answered none of its {live_calls} requests; "
                                     "check --verifier and --api-base, or raise --max-retries and --timeout")
        return verdicts

    def usage(self) -> dict[str, float]:
        return self.inner.usage()


def dedup_items(items: list[Item], gate: NoveltyGate, batch_size: int = 256,
                progress: Callable[[int, int], None] | None = None) -> tuple[list[Item], list[dict[str, Any]]]:
    """Run the cheap passes, then the gate in mini-batches; returns kept items and drop rows in input order."""
    survivors, dropped = cheap_duplicates(items)
    kept: list[Item] = []
    for start in range(0, len(survivors), batch_size):
        batch = survivors[start:start + batch_size]
        for item, verdict in zip(batch, gate.check([i.id for i in batch], [i.text for i in batch])):
            if verdict.accepted:
                kept.append(item)
            else:
                reason = "near_duplicate" if verdict.stage == "embedding" else "same_task"
                dropped.append(_drop(item, reason, verdict.stage, verdict.neighbour_id, verdict.score))
        if progress:
            progress(min(start + batch_size, len(survivors)), len(survivors))
    dropped.sort(key=lambda row: row["line"])
    return kept, dropped


def dedup(path: str | Path, out: str | Path, config: DedupConfig | None = None, *, dropped_path: str | Path | None = None,
          embedder: Embedder | None = None, verifier: Verifier | None = None,
          progress: Callable[[int, int], None] | None = None) -> DedupResult:
    """Write the kept rows of `path` to `out` (JSONL, rows unchanged) and every dropped one, with its reason and
    the id of the kept item it duplicates, to `dropped_path` (default OUT.dropped.jsonl)."""
    config = (config or DedupConfig()).validate()
    out = Path(out)
    dropped_path = Path(dropped_path) if dropped_path else out.with_name(out.name.removesuffix(".jsonl") + ".dropped.jsonl")
    _refuse_clashing_paths(Path(path), out, dropped_path)
    items = read_dataset(path, config.field)
    gate = build_gate(config, embedder, verifier)
    kept, dropped = dedup_items(items, gate, config.batch_size, progress)
    write_rows((item.row for item in kept), out, "jsonl")
    write_rows(dropped, dropped_path, "jsonl")
    usage = gate.verifier.usage() if hasattr(gate.verifier, "usage") else None
    return DedupResult(len(items), len(kept), Counter(row["reason"] for row in dropped), str(out), str(dropped_path), usage)


def _refuse_clashing_paths(source: Path, out: Path, dropped_path: Path) -> None:
    """Each output must be a file of its own: writing one over the input or over the other loses rows."""
    refuse_overlap(out, source, "--out")
    refuse_overlap(dropped_path, source, "--dropped")
    if dropped_path.resolve() == out.resolve():
        raise ConfigError("--dropped and --out name the same file; pick two different paths")
