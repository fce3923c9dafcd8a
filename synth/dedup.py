"""`synth dedup`: drop the duplicates from an existing instruction dataset, each with a reason and the kept item.

Three passes in one stream: exact text duplicates, then duplicates after case and whitespace folding, then the
novelty gate (the same component `generate` uses) for near-duplicates and, with a verifier, same-task
paraphrases. Reads Alpaca JSON, ShareGPT, OpenAI chat, synth records and plain JSONL (optionally gzipped).
"""

from __future__ import annotations

import gzip
import itertools
import json
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer

from .embeddings import DEFAULT_EMBEDDER, Embedder, shared_embedder
from .errors import ConfigError, InputFileError
from typing import TYPE_CHECKING

if TYPE_CHECKING:       # faiss loads only when a gate is built
    from .gate import NoveltyGate, Verifier
from .verifier import llm_verifier

TEXT_FIELDS = ("prompt", "instruction", "question", "query", "text")
REASONS = ("exact_duplicate", "normalized_duplicate", "near_duplicate", "same_task")


@dataclass
class Item:
    id: str
    text: str
    row: dict[str, Any]
    line: int                     # 1-based line (JSONL) or position (JSON array) in the input


@dataclass
class DedupConfig:
    threshold: float = 0.9
    recall_threshold: float | None = None   # lower edge of the band sent to the verifier
    top_k: int = 3
    embedder: str = DEFAULT_EMBEDDER
    index: str = "auto"
    field: str | None = None                # the row field to compare; found by format when None
    batch_size: int = 256
    verifier_model: str | None = None       # a litellm model string: the teacher that judges the band
    api_base: str | None = None
    cache: str | None = None                # request cache for the verifier's answers


@dataclass
class DedupResult:
    total: int
    kept: int
    dropped: Counter = field(default_factory=Counter)
    out: str = ""
    dropped_path: str = ""
    verifier_usage: dict[str, Any] | None = None


# ---- reading -------------------------------------------------------------------------------------

def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _rows(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as fh:
        head = fh.read(1)
        while head and head.isspace():
            head = fh.read(1)
        if head == "[":
            try:
                data = json.loads(head + fh.read())
            except ValueError as exc:
                raise InputFileError(path, f"not valid JSON ({exc})") from None
            yield from enumerate(data, start=1)
            return
        first = head + fh.readline()
        for number, line in enumerate(itertools.chain([first], fh), start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError:
                raise InputFileError(path, "not a JSON object on this line", number) from None


def _first_turn(turns: list, role_key: str, text_key: str, roles: tuple[str, ...]) -> str | None:
    for turn in turns:
        if isinstance(turn, dict) and turn.get(role_key) in roles and isinstance(turn.get(text_key), str):
            return turn[text_key]
    return None


def item_text(row: dict[str, Any], field_name: str | None = None) -> str | None:
    """The text to compare: the first user turn, or instruction plus input, or a named field."""
    if field_name is not None:
        value = row.get(field_name)
        return value if isinstance(value, str) else None
    if isinstance(row.get("messages"), list):
        return _first_turn(row["messages"], "role", "content", ("user",))
    if isinstance(row.get("conversations"), list):
        return _first_turn(row["conversations"], "from", "value", ("human", "user"))
    if isinstance(row.get("task"), dict) and isinstance(row["task"].get("instruction"), str):
        extra = (row.get("instance") or {}).get("input") or ""
        return row["task"]["instruction"] + (f"\n\n{extra}" if extra.strip() else "")
    if isinstance(row.get("instruction"), str):
        extra = row.get("input") or ""
        return row["instruction"] + (f"\n\n{extra}" if isinstance(extra, str) and extra.strip() else "")
    for name in TEXT_FIELDS:
        if isinstance(row.get(name), str):
            return row[name]
    return None


def read_dataset(path: str | Path, field_name: str | None = None) -> list[Item]:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "no such file")
    items, seen_ids = [], set()
    for number, row in _rows(path):
        if not isinstance(row, dict):
            raise InputFileError(path, "expected a JSON object", number)
        text = item_text(row, field_name)
        if text is None or not text.strip():
            wanted = f"a string field {field_name!r}" if field_name else "an instruction, prompt, messages or conversations field"
            raise InputFileError(path, f"no text to compare: expected {wanted}", number)
        item_id = str(row["id"]) if isinstance(row.get("id"), (str, int)) else f"row-{number}"
        if item_id in seen_ids:
            item_id = f"{item_id}@{number}"
        seen_ids.add(item_id)
        items.append(Item(item_id, text, row, number))
    if not items:
        raise InputFileError(path, "holds no items")
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
    from .gate import NoveltyGate

    if not 0.0 < config.threshold <= 1.0:
        raise ConfigError("--threshold must be in (0, 1]")
    if verifier is None and config.verifier_model:
        verifier = llm_verifier(config.verifier_model, api_base=config.api_base, cache_path=config.cache)
    recall = config.recall_threshold
    if verifier is not None and recall is None:
        recall = RECOMMENDED_RECALL_THRESHOLD
    return NoveltyGate(embedder or shared_embedder(config.embedder), config.threshold, recall_threshold=recall,
                       top_k=config.top_k, verifier=verifier, index=config.index)


RECOMMENDED_RECALL_THRESHOLD = 0.4   # see bench/RESULTS.md, "Novelty gate"


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
    config = config or DedupConfig()
    out = Path(out)
    dropped_path = Path(dropped_path) if dropped_path else out.with_name(out.name.removesuffix(".jsonl") + ".dropped.jsonl")
    if out.resolve() == Path(path).resolve():
        raise ConfigError("--out would overwrite the input file; pick another path")
    items = read_dataset(path, config.field)
    gate = build_gate(config, embedder, verifier)
    kept, dropped = dedup_items(items, gate, config.batch_size, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out, (item.row for item in kept))
    _write_jsonl(dropped_path, dropped)
    usage = gate.verifier.usage() if hasattr(gate.verifier, "usage") else None
    return DedupResult(len(items), len(kept), Counter(row["reason"] for row in dropped), str(out), str(dropped_path), usage)


def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


# ---- the command ---------------------------------------------------------------------------------

def dedup_command(
    dataset: Path = typer.Argument(..., help="Alpaca JSON, ShareGPT, OpenAI chat, synth records or any JSONL (.gz too)."),
    out: Path = typer.Option(..., "--out", help="JSONL file for the kept rows, unchanged."),
    dropped: Optional[Path] = typer.Option(None, "--dropped", help="JSONL of dropped rows with reason and kept id (default OUT.dropped.jsonl)."),
    threshold: float = typer.Option(0.9, help="Drop an item this cosine-similar to a kept one."),
    recall_threshold: Optional[float] = typer.Option(None, help="Lower edge of the band a --verifier judges (default 0.4 with a verifier)."),
    verifier: Optional[str] = typer.Option(None, "--verifier", help="litellm model that judges borderline pairs (same task or not)."),
    api_base: Optional[str] = typer.Option(None, help="OpenAI-compatible base URL for the --verifier model."),
    cache: Optional[Path] = typer.Option(None, help="Request cache for the verifier's answers (default OUT.cache.sqlite)."),
    embedder: str = typer.Option(DEFAULT_EMBEDDER, help="sentence-transformers model name or folder (default: bundled MiniLM)."),
    index: str = typer.Option("auto", help="auto | flat | hnsw (auto: exact search up to 1M items)."),
    field: Optional[str] = typer.Option(None, "--field", help="Compare this field of each row instead of the detected prompt."),
    batch_size: int = typer.Option(256, help="Items embedded and judged together."),
) -> None:
    """Drop exact, normalised and near duplicates from a dataset; every drop has a reason and the kept item's id."""
    from rich.console import Console
    from rich.progress import Progress

    config = DedupConfig(threshold=threshold, recall_threshold=recall_threshold, embedder=embedder, index=index,
                         field=field, batch_size=batch_size, verifier_model=verifier, api_base=api_base,
                         cache=str(cache or out.with_name(out.name + ".cache.sqlite")) if verifier else None)
    console = Console(stderr=True)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("dedup", total=None)
        result = dedup(dataset, out, config, dropped_path=dropped,
                       progress=lambda done, total: bar.update(task, completed=done, total=total))
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(result.dropped.items())) or "none"
    Console().print(f"kept {result.kept} of {result.total} in {result.out}; dropped: {reasons} "
                    f"(listed in {result.dropped_path})", soft_wrap=True, highlight=False)
    if result.verifier_usage:
        u = result.verifier_usage
        Console().print(f"verifier: {u['calls']} calls ({u['cached_calls']} cached), ${u['cost_usd']:.4f}", highlight=False)
