"""Read training conversations from a synth run folder or an exported dataset, and split off an eval set.

Every source becomes a list of `Conversation`: an id and chat messages (system?, user, assistant).
Accepted: a run folder (data.jsonl records), openai-chat JSONL ({"messages": [...]}), sharegpt JSONL
({"conversations": [{"from", "value"}]}), alpaca JSON or JSONL ({"instruction", "input", "output"}),
synth records in any JSONL, and a folder written by `synth export --format hf`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputFileError
from ..records import chat_messages, user_message
from ..runfolder import DATA

_SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


@dataclass
class Conversation:
    id: str
    messages: list[dict[str, str]]


def row_messages(row: dict[str, Any]) -> list[dict[str, str]] | None:
    """Chat messages for one row of any accepted format, or None when the row has no known shape."""
    if "task" in row and "response" in row:
        return chat_messages(row)
    if isinstance(row.get("messages"), list):
        return [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    if isinstance(row.get("conversations"), list):
        return [{"role": _SHAREGPT_ROLES[m["from"]], "content": m["value"]} for m in row["conversations"]]
    if "instruction" in row and "output" in row:
        messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
        messages.append({"role": "user", "content": user_message(row["instruction"], row.get("input") or "")})
        messages.append({"role": "assistant", "content": row["output"]})
        return messages
    return None


def _checked(messages: list[dict[str, str]] | None, path: Path, line: int | None) -> list[dict[str, str]]:
    if messages is None:
        raise InputFileError(path, "not a known record shape (expected messages, conversations, "
                                   "instruction/output or a synth record)", line)
    if not messages or messages[-1]["role"] != "assistant" or not str(messages[-1]["content"]).strip():
        raise InputFileError(path, "the conversation must end with a non-empty assistant message", line)
    return messages


def _row_id(row: dict[str, Any], fallback: str) -> str:
    return str(row.get("id") or fallback)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) of a JSONL file, gzipped or not; a damaged gzip stream is a one-line error."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            yield from enumerate(fh, start=1)
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise InputFileError(path, "is not a complete gzip file (cut short, or not gzip at all); re-create it") from None


def _from_jsonl(path: Path) -> list[Conversation]:
    conversations = []
    for number, raw in _lines(path):
        if not raw.strip():
            continue
        if not raw.endswith(b"\n") and path.name == DATA:
            break                                   # a record cut short by a crash: synth never counts it
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputFileError(path, "is not UTF-8 text; save the dataset as UTF-8", number) from None
        except ValueError as exc:
            raise InputFileError(path, f"not valid JSON ({exc})", number) from None
        if not isinstance(row, dict):
            raise InputFileError(path, "each line must be a JSON object", number)
        try:
            messages = _checked(row_messages(row), path, number)
        except (KeyError, TypeError) as exc:
            raise InputFileError(path, f"missing field {exc}", number) from None
        conversations.append(Conversation(_row_id(row, f"line-{number}"), messages))
    return conversations


def _from_rows(rows: list[Any], path: Path) -> list[Conversation]:
    conversations = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputFileError(path, f"item {index} is not a JSON object")
        try:
            messages = _checked(row_messages(row), path, None)
        except (KeyError, TypeError) as exc:
            raise InputFileError(path, f"item {index}: missing field {exc}") from None
        conversations.append(Conversation(_row_id(row, f"item-{index}"), messages))
    return conversations


def load_conversations(source: str | Path) -> list[Conversation]:
    """Every conversation in `source`; raises a one-line `InputFileError` for a missing, malformed or empty source."""
    path = Path(source)
    if path.is_dir() and (path / DATA).is_file():
        conversations = _from_jsonl(path / DATA)
    elif path.is_dir() and (path / "dataset_info.json").is_file():
        import datasets

        conversations = _from_rows(list(datasets.load_from_disk(str(path))), path)
    elif path.is_file() and path.suffix == ".json":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputFileError(path, f"not valid JSON ({exc})") from None
        conversations = _from_rows(rows if isinstance(rows, list) else [rows], path)
    elif path.is_file():
        conversations = _from_jsonl(path)
    else:
        raise InputFileError(path, f"no such dataset: pass a synth run folder (with {DATA}) or an exported file")
    if not conversations:
        raise InputFileError(path, "the dataset is empty: no training examples")
    return conversations


def erase_prompts(conversations: list[Conversation], generic_system: str) -> list[Conversation]:
    """Orca 2 prompt erasing: the student trains under a generic system message, not the teacher's."""
    erased = []
    for conv in conversations:
        rest = [m for m in conv.messages if m["role"] != "system"]
        erased.append(Conversation(conv.id, [{"role": "system", "content": generic_system}, *rest]))
    return erased


def split(conversations: list[Conversation], fraction: float, cap: int, seed: int
          ) -> tuple[list[Conversation], list[Conversation]]:
    """A seeded train/eval split; eval gets round(fraction * n) items (at least 1 when fraction > 0), capped."""
    if fraction <= 0 or len(conversations) < 2:
        return list(conversations), []
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    n_eval = min(cap, max(1, round(fraction * len(conversations))), len(conversations) - 1)
    held = set(order[:n_eval])
    train = [c for i, c in enumerate(conversations) if i not in held]
    evals = [conversations[i] for i in sorted(held)]
    return train, evals


def fingerprint(source: str | Path) -> dict[str, Any]:
    """Data provenance: the file read and its sha256, so a student can be traced back to its exact data."""
    path = Path(source)
    target = path / DATA if (path / DATA).is_file() else path
    if not target.is_file():
        return {"path": str(path.resolve())}
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    return {"path": str(target.resolve()), "sha256": digest, "bytes": target.stat().st_size}
