"""Turning teacher text into items. Pure functions: they never raise on any input."""

from __future__ import annotations

import re

_NUMBERED = re.compile(r"^\s*(?:#+\s*)?(?:\*\*)?(?:task|instruction)?\s*(\d{1,3})\s*(?:\*\*)?\s*[.):\]-]\s*(?:\*\*)?\s*(.*)$", re.I)
_BULLET = re.compile(r"^\s*[-*\u2022]\s+(.*)$")
_LABELLED = re.compile(r"^\s*(?:\*\*)?\s*(input|output|label|class label|answer)\s*(?:\*\*)?\s*:\s*(?:\*\*)?\s*(.*)$", re.I)
_EMPTY_INPUT = {"", "none", "<none>", "n/a", "na", "null", "(none)", "no input", "<noinput>", "-"}


def _clean(text: str) -> str:
    text = text.strip().strip("*").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return re.sub(r"\s+", " ", text)


def parse_numbered_list(text: str) -> list[str]:
    """Items of a numbered list ("1. ...", "2) ...", "Task 3: ..."); lines that continue an item join it.

    Falls back to a bulleted list when no numbered item is found.
    """
    items: list[list[str]] = []
    for line in (text or "").splitlines():
        match = _NUMBERED.match(line)
        if match:
            items.append([match.group(2)])
        elif items and line.strip():
            items[-1].append(line.strip())
    if not items:
        items = [[m.group(1)] for m in map(_BULLET.match, (text or "").splitlines()) if m]
    cleaned = (_clean(" ".join(parts)) for parts in items)
    return [item for item in cleaned if item]


def parse_instances(text: str, *, output_first: bool = False) -> list[dict[str, str]]:
    """Instances written as "Input: ... / Output: ..." blocks (or "Label: ... / Input: ..." when output-first)."""
    instances: list[dict[str, str]] = []
    current: dict[str, list[str]] | None = None
    field = None
    opener = "output" if output_first else "input"
    for line in (text or "").splitlines():
        match = _LABELLED.match(line)
        if match:
            name = match.group(1).lower()
            name = "output" if name in ("label", "class label", "answer", "output") else "input"
            if name == opener or current is None or current.get(name):
                current = {"input": [], "output": []}
                instances.append(current)  # type: ignore[arg-type]
            field = name
            current[field].append(match.group(2))
        elif current is not None and field is not None:
            current[field].append(line)
    result = []
    for inst in instances:
        joined = {k: "\n".join(v).strip() for k, v in inst.items()}  # type: ignore[union-attr]
        if joined["input"].strip().lower() in _EMPTY_INPUT:
            joined["input"] = ""
        if joined["output"]:
            result.append(joined)
    return result


def parse_yes_no(text: str) -> bool | None:
    """True for an answer that starts with yes, False for no, None when it says neither."""
    match = re.search(r"\b(yes|no)\b", (text or "").lower())
    if not match:
        return None
    return match.group(1) == "yes"
