"""Writing datasets: rows to JSONL, JSON, Parquet or a Hugging Face folder, and examples in every export format.

Every write goes to a temporary file beside the target and is renamed into place once complete, so a failed or
interrupted write never leaves a half-made file, and never replaces a good one with it.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import ConfigError
from .shapes import Example, example, record_problem

# format name -> (row builder, container)
FORMATS = ("openai-chat", "alpaca", "sharegpt", "hf", "parquet", "jsonl")


def openai_chat_row(ex: Example, row: dict[str, Any]) -> dict[str, Any]:
    return {"messages": ex.chat()}


def alpaca_row(ex: Example, row: dict[str, Any]) -> dict[str, Any]:
    result = {"instruction": ex.instruction, "input": ex.input, "output": ex.output or ""}
    if ex.system:
        result["system"] = ex.system
    return result


def sharegpt_row(ex: Example, row: dict[str, Any]) -> dict[str, Any]:
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"id": ex.id, "conversations": [{"from": names[m["role"]], "value": m["content"]} for m in ex.chat()]}


def hf_row(ex: Example, row: dict[str, Any]) -> dict[str, Any]:
    """A flat row with the conversation and, for a synth record, its system message id, kind and provenance."""
    synth = record_problem(row) is None
    return {"id": ex.id, "system": ex.system or "", "instruction": ex.instruction, "input": ex.input,
            "output": ex.output or "", "kind": ex.kind or "", "messages": ex.chat(),
            "system_message_id": row["system_message"]["id"] if synth else "",
            "provenance": json.dumps(row["provenance"], ensure_ascii=False) if synth else ""}


_BUILDERS: dict[str, Callable[[Example, dict[str, Any]], dict[str, Any]]] = {
    "openai-chat": openai_chat_row, "alpaca": alpaca_row, "sharegpt": sharegpt_row, "hf": hf_row, "parquet": hf_row,
}


def format_row(fmt: str, row: dict[str, Any]) -> dict[str, Any]:
    """`row` (any shape) in export format `fmt`; "jsonl" keeps it unchanged."""
    if fmt == "jsonl":
        return row
    return _BUILDERS[fmt](example(row), row)


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_rows(rows: Iterable[dict[str, Any]], path: str | Path, fmt: str | None = None) -> int:
    """Write `rows` to `path` and return how many: a Hugging Face folder for fmt "hf", Parquet for a .parquet path
    or fmt "parquet", a JSON array for .json (and "alpaca"), JSONL otherwise; gzipped when the name ends in .gz."""
    path = Path(path)
    if fmt == "hf":
        return _write_hf(list(rows), path)
    if fmt == "parquet" or path.name.endswith(".parquet"):
        return _replace(path, lambda tmp: _write_parquet(list(rows), tmp))
    as_array = fmt == "alpaca" or path.name.removesuffix(".gz").endswith(".json")
    return _replace(path, lambda tmp: _write_text(rows, tmp, as_array, path.name.endswith(".gz")))


def _replace(path: Path, write: Callable[[Path], int]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file path to write")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        count = write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return count


def _write_text(rows: Iterable[dict[str, Any]], tmp: Path, as_array: bool, gz: bool) -> int:
    count = 0
    opener = (lambda p: gzip.open(p, "wt", encoding="utf-8")) if gz else (lambda p: open(p, "w", encoding="utf-8"))
    with opener(tmp) as fh:
        if as_array:
            items = list(rows)
            fh.write(json.dumps(finite(items), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
            count = len(items)
        else:
            for row in rows:
                fh.write(json.dumps(finite(row), ensure_ascii=False, allow_nan=False) + "\n")
                count += 1
        fh.flush()
        if not gz:
            os.fsync(fh.fileno())
    return count


def finite(value: Any) -> Any:
    """`value` with NaN and infinity replaced by null, so what synth writes is always strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def _write_parquet(rows: list[dict[str, Any]], tmp: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp)
    return len(rows)


def _write_hf(rows: list[dict[str, Any]], path: Path) -> int:
    import datasets

    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file; the hf format writes a folder")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp))
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(path)
    return len(rows)
