"""Export a run's records to the formats trainers read: openai-chat, alpaca, sharegpt, hf (datasets on disk)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ConfigError, InputFileError, RunFolderError
from .records import chat_messages
from .runfolder import CACHE, CONFIG, DATA, GATE, MANIFEST, REJECTED, SPEND, TASKS

FORMATS = ("openai-chat", "alpaca", "sharegpt", "hf")
RUN_FILES = (CONFIG, MANIFEST, TASKS, DATA, REJECTED, CACHE, SPEND, GATE, "report")   # what a run folder owns
WHAT_EXPORT_READS = "export reads a synth run folder or the data.jsonl of one"

# The fields the formats use: top-level type, then the string fields inside each object.
_RECORD_FIELDS = {"id": str, "task": dict, "instance": dict, "system_message": dict, "response": str, "provenance": dict}
_NESTED_STRINGS = {"task": ("instruction", "kind"), "instance": ("input",), "system_message": ("id", "text")}


def load_records(run: str | Path, *, warn: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """The records of a run folder (or of its data.jsonl). A malformed line is an InputFileError naming it; a last
    line cut short by a crash is skipped and reported through `warn` (default: a Python warning)."""
    path = _data_file(Path(run))
    records: list[dict[str, Any]] = []
    for number, record in _record_lines(path, warn or _python_warning):
        problem = _record_problem(record)
        if problem:
            raise InputFileError(path, f"not a synth record ({problem}); {WHAT_EXPORT_READS}", number)
        records.append(record)
    if not records:
        raise InputFileError(path, f"holds no records; {WHAT_EXPORT_READS}")
    return records


def _data_file(run: Path) -> Path:
    path = run / DATA if run.is_dir() else run
    if not path.is_file():
        raise RunFolderError(f"{run} holds no {DATA}; pass a synth run folder")
    if path.name.endswith(".gz"):
        raise InputFileError(path, f"is compressed; {WHAT_EXPORT_READS} (uncompressed JSONL)")
    return path


def _record_lines(path: Path, warn: Callable[[str], None]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed line), blank lines skipped. Runs are append-only, so a crash can cut only the last
    line, the one without a newline: that one is skipped; any other line that does not parse is an error."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except ValueError as exc:           # UnicodeDecodeError is a ValueError too
                if raw.endswith(b"\n"):
                    what = "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "is not valid JSON"
                    raise InputFileError(path, f"{what}; {WHAT_EXPORT_READS}", number) from None
                warn(f"{path}:{number}: skipped 1 record cut short by a crash (the last line has no newline)")
                continue
            yield number, row


def _record_problem(row: Any) -> str | None:
    """What keeps `row` from being a synth record, or None."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    for key, kind in _RECORD_FIELDS.items():
        if not isinstance(row.get(key), kind):
            return f"no {key!r} {'object' if kind is dict else 'string'}"
    for key, names in _NESTED_STRINGS.items():
        for name in names:
            if not isinstance(row[key].get(name), str):
                return f"no string {key}.{name}"
    return None


def _python_warning(message: str) -> None:
    warnings.warn(message, stacklevel=4)


def _openai_chat(record: dict[str, Any]) -> dict[str, Any]:
    return {"messages": chat_messages(record)}


def _alpaca(record: dict[str, Any]) -> dict[str, Any]:
    return {"instruction": record["task"]["instruction"], "input": record["instance"]["input"],
            "output": record["response"], "system": record["system_message"]["text"]}


def _sharegpt(record: dict[str, Any]) -> dict[str, Any]:
    roles = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"id": record["id"],
            "conversations": [{"from": roles[m["role"]], "value": m["content"]} for m in chat_messages(record)]}


def _hf_row(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "system": record["system_message"]["text"],
            "system_message_id": record["system_message"]["id"], "instruction": record["task"]["instruction"],
            "input": record["instance"]["input"], "output": record["response"], "kind": record["task"]["kind"],
            "messages": chat_messages(record), "provenance": json.dumps(record["provenance"])}


_ROW: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "openai-chat": _openai_chat, "alpaca": _alpaca, "sharegpt": _sharegpt, "hf": _hf_row,
}


def export(run: str | Path, fmt: str, out: str | Path, *, warn: Callable[[str], None] | None = None) -> int:
    """Write the run's records to `out` in format `fmt`; returns the number written."""
    if fmt not in _ROW:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    _refuse_out_in_input(Path(run), out)
    rows = [_ROW[fmt](r) for r in load_records(run, warn=warn)]
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "hf":
        import datasets

        datasets.Dataset.from_list(rows).save_to_disk(str(out))
    elif fmt == "alpaca":
        out.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    else:
        with open(out, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def _refuse_out_in_input(run: Path, out: Path) -> None:
    """--out must not be the input file, the input run folder or one of the run's own files, nor (a folder, for hf)
    hold the input. A new file in the run folder is fine: `make demo` and the library example export there."""
    source, target = run.resolve(), out.resolve()
    folder = source if run.is_dir() else (source.parent if source.name == DATA else source)
    inside = target.relative_to(folder).parts if target.is_relative_to(folder) else None
    if inside == () or (inside and inside[0].startswith(RUN_FILES)) or source.is_relative_to(target):
        raise ConfigError(f"--out {out} would write over the input {run}, which export must not change; "
                          "write it elsewhere")
