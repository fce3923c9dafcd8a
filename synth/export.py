"""Export a run's records to the formats trainers read: openai-chat, alpaca, sharegpt, hf (datasets on disk)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, RunFolderError
from .jsonl import read_complete_lines
from .records import chat_messages
from .runfolder import DATA

FORMATS = ("openai-chat", "alpaca", "sharegpt", "hf")


def load_records(run: str | Path) -> list[dict[str, Any]]:
    run = Path(run)
    path = run / DATA if run.is_dir() else run
    if not path.is_file():
        raise RunFolderError(f"{run} holds no {DATA}; pass a synth run folder")
    return list(read_complete_lines(path))


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


def export(run: str | Path, fmt: str, out: str | Path) -> int:
    """Write the run's records to `out` in format `fmt`; returns the number written."""
    if fmt not in _ROW:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    rows = [_ROW[fmt](r) for r in load_records(run)]
    out = Path(out)
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
