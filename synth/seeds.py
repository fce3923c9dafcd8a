"""Reading seed tasks: synth's own files, Self-Instruct's seed JSONL and Alpaca's JSON list."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Iterable

from .errors import InputFileError
from .resources import seeds_dir
from .tasks import Task, content_id


def default_seed_file() -> Path:
    return seeds_dir() / "general.jsonl"


def load_seeds(path: str | Path | None = None) -> list[Task]:
    """Load seed tasks from `path` (a file, or a folder of .jsonl/.json files); the bundled seeds by default."""
    path = Path(path) if path is not None else default_seed_file()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".json"))
        if not files:
            raise InputFileError(path, "folder holds no .jsonl or .json seed files")
        tasks = [t for f in files for t in _load_file(f)]
    else:
        tasks = _load_file(path)
    if not tasks:
        raise InputFileError(path, "holds no seed tasks; add at least one task with an 'instruction'")
    return _unique_ids(tasks)


def _load_file(path: Path) -> list[Task]:
    if not path.exists():
        raise InputFileError(path, "no such file; give an existing JSONL or JSON file of tasks")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise InputFileError(path, "is not a readable gzip file") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputFileError(path, "is not valid UTF-8; re-save it as UTF-8", line) from None
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise InputFileError(path, f"is not valid JSON ({exc.msg})", exc.lineno) from None
        return [_task_from_row(row, path, None, i) for i, row in enumerate(rows, 1)]
    tasks = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputFileError(path, f"is not valid JSON ({exc.msg}); each line must be one JSON object", number) from None
        tasks.append(_task_from_row(row, path, number, number))
    return tasks


def _task_from_row(row: Any, path: Path, line: int | None, index: int) -> Task:
    where = line if line is not None else None
    label = f"item {index}: " if line is None else ""
    if not isinstance(row, dict):
        raise InputFileError(path, f"{label}expected a JSON object with an 'instruction'", where)
    row = _normalise_row(row)
    instruction = row.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise InputFileError(path, f"{label}missing or empty 'instruction' (a non-empty string)", where)
    if "instances" in row:          # Self-Instruct / synth format
        instances = row["instances"]
        if not isinstance(instances, list) or not all(isinstance(i, dict) for i in instances):
            raise InputFileError(path, f"{label}'instances' must be a list of {{input, output}} objects", where)
        instances = [_instance(i, path, where, label) for i in instances]
    else:                           # Alpaca format
        instances = [_instance(row, path, where, label)] if "output" in row else []
    is_cls = row.get("is_classification")
    if is_cls is not None and not isinstance(is_cls, bool):
        raise InputFileError(path, f"{label}'is_classification' must be true or false", where)
    task_id = row.get("id") or content_id("seed", instruction, json.dumps(instances, sort_keys=True))
    return Task(
        id=str(task_id),
        instruction=instruction.strip(),
        instances=instances,
        is_classification=is_cls,
        kind=row.get("kind") if isinstance(row.get("kind"), str) else None,
        origin="seed",
    )


def _normalise_row(row: dict) -> dict:
    """Accept T0/FLAN-style {prompt, completion} and OpenAI-chat {messages} rows as instruction rows."""
    if "instruction" not in row and isinstance(row.get("prompt"), str):
        return {**row, "instruction": row["prompt"], "output": row.get("completion", "")}
    if "instruction" not in row and isinstance(row.get("messages"), list):
        turns = [m for m in row["messages"] if isinstance(m, dict)]
        user = next((m.get("content") for m in turns if m.get("role") == "user"), None)
        reply = next((m.get("content") for m in turns if m.get("role") == "assistant"), "")
        return {**row, "instruction": user, "output": reply or ""}
    return row


def _instance(row: dict, path: Path, line: int | None, label: str) -> dict[str, str]:
    values = {}
    for key in ("input", "output"):
        value = row.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InputFileError(path, f"{label}'{key}' must be a string", line)
        values[key] = value
    return values


def _unique_ids(tasks: Iterable[Task]) -> list[Task]:
    seen: dict[str, int] = {}
    result = []
    for task in tasks:
        if task.id in seen:
            seen[task.id] += 1
            task.id = f"{task.id}#{seen[task.id]}"
        else:
            seen[task.id] = 0
        result.append(task)
    return result
