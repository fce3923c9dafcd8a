"""`synth dedup`: drop the duplicates from an existing instruction dataset, each with a reason and the kept item.

Three passes in one stream: exact text duplicates, then duplicates after case and whitespace folding, then the
novelty gate (the same component `generate` uses) for near-duplicates and, with a verifier, same-task
paraphrases. Reads Alpaca JSON, ShareGPT, OpenAI chat, synth records and plain JSONL (optionally gzipped).
"""

from __future__ import annotations

import gzip
import json
import unicodedata
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer

from .breaker import DEFAULT_MAX_OUTAGE
from .embeddings import DEFAULT_EMBEDDER, Embedder, shared_embedder
from .errors import ConfigError, InputFileError, TeacherOutageError
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
    timeout: float = 60.0                   # per verifier request attempt, in seconds
    max_retries: int = 5                    # per verifier request
    max_outage: float = DEFAULT_MAX_OUTAGE  # seconds the verifier may fail every attempt before dedup stops

    def validate(self) -> "DedupConfig":
        checks = [
            (0.0 < self.threshold <= 1.0, "--threshold must be in (0, 1]"),
            (self.recall_threshold is None or 0.0 <= self.recall_threshold <= self.threshold,
             "--recall-threshold must be in [0, --threshold]"),
            (self.top_k >= 1, "top_k must be at least 1"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.index in ("auto", "flat", "hnsw"), "--index must be auto, flat or hnsw"),
            (self.timeout > 0, "--timeout must be positive"),
            (self.max_retries >= 0, "--max-retries cannot be negative"),
            (self.max_outage > 0, "--max-outage must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self


@dataclass
class DedupResult:
    total: int
    kept: int
    dropped: Counter = field(default_factory=Counter)
    out: str = ""
    dropped_path: str = ""
    verifier_usage: dict[str, Any] | None = None


# ---- reading -------------------------------------------------------------------------------------

def _read_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(line or position, parsed row) for a JSON array or JSONL file; unreadable bytes are an InputFileError."""
    try:
        with _read_bytes(path) as fh:
            head = fh.read(1)
            while head and head.isspace():
                head = fh.read(1)
            if head == b"[":
                yield from enumerate(_json_array(path, head + fh.read()), start=1)
                return
            yield from _jsonl_rows(path, _prepend(head, fh))
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise InputFileError(path, "is not a complete gzip file (cut short or not gzip); check or re-create it") from None


def _prepend(head: bytes, fh) -> Iterator[bytes]:
    first = head + fh.readline()
    if first:
        yield first
    yield from fh


def _json_array(path: Path, data: bytes) -> list:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, "is not UTF-8 text", data[:exc.start].count(b"\n") + 1) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputFileError(path, f"not valid JSON ({exc})") from None


def _jsonl_rows(path: Path, lines: Iterator[bytes]) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InputFileError(path, "is not UTF-8 text", number) from None
        try:
            yield number, json.loads(text)
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
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out, (item.row for item in kept))
    _write_jsonl(dropped_path, dropped)
    usage = gate.verifier.usage() if hasattr(gate.verifier, "usage") else None
    return DedupResult(len(items), len(kept), Counter(row["reason"] for row in dropped), str(out), str(dropped_path), usage)


def _refuse_clashing_paths(source: Path, out: Path, dropped_path: Path) -> None:
    """Each output must be a file of its own: writing one over the input or over the other loses rows."""
    if out.resolve() == source.resolve():
        raise ConfigError("--out would overwrite the input file; pick another path")
    if dropped_path.resolve() == source.resolve():
        raise ConfigError("--dropped would overwrite the input file; pick another path")
    if dropped_path.resolve() == out.resolve():
        raise ConfigError("--dropped and --out name the same file; pick two different paths")


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
    timeout: float = typer.Option(60.0, help="Hard deadline in seconds for one verifier request attempt."),
    max_retries: int = typer.Option(5, help="Retries per verifier request on 408/409/429/5xx/connection errors."),
    max_outage: float = typer.Option(DEFAULT_MAX_OUTAGE, help="Seconds the verifier may fail every attempt before dedup stops (exit 4)."),
) -> None:
    """Drop exact, normalised and near duplicates from a dataset; every drop has a reason and the kept item's id."""
    from rich.console import Console
    from rich.progress import Progress

    config = DedupConfig(threshold=threshold, recall_threshold=recall_threshold, embedder=embedder, index=index,
                         field=field, batch_size=batch_size, verifier_model=verifier, api_base=api_base,
                         cache=str(cache or out.with_name(out.name + ".cache.sqlite")) if verifier else None,
                         timeout=timeout, max_retries=max_retries, max_outage=max_outage)
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("dedup", total=None)
        result = dedup(dataset, out, config, dropped_path=dropped,
                       progress=lambda done, total: bar.update(task, completed=done, total=total))
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(result.dropped.items())) or "none"
    Console().print(f"kept {result.kept} of {result.total} in {result.out}; dropped: {reasons} "
                    f"(listed in {result.dropped_path})", soft_wrap=True, highlight=False)
    if result.verifier_usage:
        u = result.verifier_usage
        Console().print(f"verifier: {u['calls']} calls ({u['cached_calls']} cached, {u['failures']} unanswered, their pairs kept), "
                        f"${u['cost_usd']:.4f}", highlight=False)
