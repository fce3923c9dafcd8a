"""Reading any dataset file or folder into rows, one way for every command.

Accepted: JSON (an array of rows), JSONL, either gzipped (`.gz`), Parquet, plain text (`.txt`: one row per line),
a folder of such files (read in name order), a Hugging Face `save_to_disk` folder, and a synth run folder (its
`data.jsonl`). A UTF-8 byte-order mark and CRLF line ends are accepted. Whether a file is a JSON array or JSONL is
told by its first character, never by its name.

The rules, the same for every caller:
- a last line cut short by a crash (no newline, and not valid JSON) is skipped with a warning naming file and line;
- any other line that is not valid JSON, not UTF-8 text, or not an object is an `InputFileError` naming file and line;
- text that is not valid Unicode (a lone surrogate such as half an emoji) is repaired with U+FFFD, never a crash;
- rows are streamed (`iter_rows`), so a million-row file is never held in memory unless the caller keeps it.
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import InputFileError

RUN_DATA = "data.jsonl"
DATA_SUFFIXES = (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".json.gz", ".ndjson.gz", ".parquet", ".txt", ".txt.gz")
Warn = Callable[[str], None]
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass
class Row:
    """One row of a dataset and where it came from (`line` for JSONL and text, `index` for JSON arrays and
    Parquet, both 1-based)."""

    data: dict[str, Any]
    path: Path
    line: int | None = None
    index: int | None = None

    @property
    def where(self) -> str:
        if self.line is not None:
            return f"{self.path}:{self.line}"
        return f"{self.path} (row {self.index})" if self.index is not None else str(self.path)

    def error(self, message: str) -> InputFileError:
        """An InputFileError that names this row's file and line (or its position in an array)."""
        if self.line is not None:
            return InputFileError(self.path, message, self.line)
        return InputFileError(self.path, f"row {self.index}: {message}" if self.index is not None else message)


def read_rows(path: str | Path, *, warn: Warn | None = None, allow_empty: bool = False) -> list[Row]:
    """Every row of the dataset at `path`; an empty dataset is an InputFileError unless `allow_empty`."""
    rows = list(iter_rows(path, warn=warn))
    if not rows and not allow_empty:
        raise InputFileError(Path(path), "holds no rows; give a dataset with at least one row")
    return rows


def iter_rows(path: str | Path, *, warn: Warn | None = None) -> Iterator[Row]:
    """The rows of the dataset at `path`, one at a time."""
    path = Path(path)
    warn = warn or _python_warning
    for file in dataset_files(path):
        if file.is_dir():
            yield from _hf_rows(file)
        elif _suffix(file) == ".parquet":
            yield from _parquet_rows(file)
        else:
            yield from _text_file_rows(file, warn)


def dataset_files(path: Path) -> list[Path]:
    """The files (or the one HF folder) that make up the dataset at `path`."""
    if path.is_file():
        return [path]
    if not path.exists():
        raise InputFileError(path, "no such file or folder; give a dataset file, a folder of them or a synth run folder")
    if (path / RUN_DATA).is_file():
        return [path / RUN_DATA]
    if (path / "dataset_info.json").is_file() or (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and _suffix(p) in DATA_SUFFIXES)
    if not files:
        raise InputFileError(path, f"folder holds no dataset files ({', '.join(DATA_SUFFIXES[:4])}, .parquet, .txt)")
    return files


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in sorted(DATA_SUFFIXES, key=len, reverse=True) if name.endswith(s)), path.suffix.lower())


def _python_warning(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def _open(path: Path):
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _text_file_rows(path: Path, warn: Warn) -> Iterator[Row]:
    try:
        with _open(path) as fh:
            first = fh.readline()
            first = first.removeprefix(b"\xef\xbb\xbf")
            head = first.lstrip()
            while not head and first:                   # blank lines before the first row
                first = fh.readline()
                head = first.lstrip()
            if ".txt" in path.name.lower():
                yield from _plain_lines(path, _chain(first, fh))
            elif head.startswith(b"["):
                yield from _json_array(path, first + fh.read())
            else:
                yield from _jsonl(path, _chain(first, fh), warn)
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise InputFileError(path, "is not a complete gzip file (cut short, or not gzip at all); re-create it") from None


def _chain(first: bytes, rest) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _decode(path: Path, raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(path, "is not UTF-8 text; save the file as UTF-8", line) from None


def _jsonl(path: Path, lines: Iterator[bytes], warn: Warn) -> Iterator[Row]:
    pending: tuple[int, bytes] | None = None
    for number, raw in enumerate(lines, start=1):
        if pending is not None:
            yield _jsonl_row(path, *pending, last=False, warn=warn)
            pending = None
        if raw.strip():
            pending = (number, raw)
    if pending is not None:
        row = _jsonl_row(path, *pending, last=True, warn=warn)
        if row is not None:
            yield row


def _jsonl_row(path: Path, number: int, raw: bytes, *, last: bool, warn: Warn) -> Row | None:
    try:
        value = json.loads(_decode(path, raw, number))
    except ValueError as exc:
        if isinstance(exc, InputFileError):
            raise
        if last and not raw.endswith(b"\n"):
            warn(f"{path}:{number}: skipped a last line cut short (no newline, not valid JSON), as a crash leaves it")
            return None
        raise InputFileError(path, f"is not valid JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else exc}); "
                                   "each line must be one JSON object", number) from None
    return Row(_as_object(value, lambda m: InputFileError(path, m, number)), path, line=number)


def _json_array(path: Path, data: bytes) -> Iterator[Row]:
    text = data.decode("utf-8", errors="strict") if _valid_utf8(path, data) else ""
    try:
        values = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise InputFileError(path, f"is not valid JSON ({getattr(exc, 'msg', exc)})", line) from None
    if not isinstance(values, list):
        raise InputFileError(path, "is not a JSON array of rows")
    for index, value in enumerate(values, start=1):
        yield Row(_as_object(value, lambda m: InputFileError(path, f"row {index}: {m}")), path, index=index)


def _valid_utf8(path: Path, data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, "is not UTF-8 text; save the file as UTF-8", data[: exc.start].count(b"\n") + 1) from None
    return True


def _plain_lines(path: Path, lines: Iterator[bytes]) -> Iterator[Row]:
    for number, raw in enumerate(lines, start=1):
        text = _decode(path, raw, number).strip()
        if text:
            yield Row({"text": text}, path, line=number)


def _parquet_rows(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
        index = 0
        for batch in table.iter_batches(batch_size=4096):
            for value in batch.to_pylist():
                index += 1
                yield Row(repair(value), path, index=index)
    except (OSError, ValueError) as exc:     # pyarrow's ArrowInvalid is a ValueError
        raise InputFileError(path, f"is not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def _hf_rows(folder: Path) -> Iterator[Row]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(folder))
    except (OSError, ValueError, FileNotFoundError) as exc:
        raise InputFileError(folder, f"is not a readable Hugging Face dataset folder ({str(exc).splitlines()[0]})") from None
    if isinstance(loaded, datasets.DatasetDict):
        split = "train" if "train" in loaded else next(iter(loaded))
        loaded = loaded[split]
    for index, value in enumerate(loaded, start=1):
        yield Row(repair(value), folder, index=index)


def _as_object(value: Any, error: Callable[[str], InputFileError]) -> dict[str, Any]:
    """A row as a dict: an object as it is, a bare string as {"text": ...}; anything else is an error."""
    if isinstance(value, dict):
        return repair(value)
    if isinstance(value, str):
        return {"text": repair(value)}
    raise error(f"expected a JSON object, not {type(value).__name__ if value is not None else 'null'}")


def repair(value: Any) -> Any:
    """`value` with every string made valid Unicode: a lone surrogate becomes U+FFFD (a pair becomes its character)."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return value
    if isinstance(value, dict):
        return {repair(k): repair(v) for k, v in value.items()}
    if isinstance(value, list):
        return [repair(v) for v in value]
    return value
