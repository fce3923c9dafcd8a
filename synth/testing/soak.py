"""Accounting shared by the reliability tests and the soak benchmark: query files, how each query ended,
what the server billed, where a canary key turns up, and rewriting one section of a results file."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

from ..files import read_complete_lines
from .scripts import Attempt

TOPICS = ["rivers", "fractions", "sorting", "volcanoes", "interest", "poetry", "gravity", "tariffs", "enzymes"]


def write_queries(path: Path, count: int) -> Path:
    """`count` distinct explanation-mode queries with ids q00000, q00001, ..."""
    with open(path, "w") as fh:
        for i in range(count):
            fh.write(json.dumps({"id": f"q{i:05d}", "instruction": f"Question {i}: explain one fact about "
                                 f"{TOPICS[i % len(TOPICS)]} that a student might find surprising.", "input": ""}) + "\n")
    return path


def outcomes(run: Path) -> Counter:
    """How many times each query ended: as a record, a rejection or a failure."""
    ended = Counter(r["task"]["id"] for r in read_complete_lines(run / "data.jsonl"))
    ended.update(r["task_id"] for r in read_complete_lines(run / "rejected.jsonl"))
    return ended


def lost_and_duplicated(run: Path, count: int) -> tuple[int, int]:
    """Queries of a `write_queries` file that never ended, and extra ends of those that ended more than once."""
    ended = outcomes(run)
    lost = sum(1 for i in range(count) if f"q{i:05d}" not in ended)
    return lost, sum(n - 1 for n in ended.values() if n > 1)


def billed(attempts: Iterable[Attempt], input_per_m: float, output_per_m: float) -> dict[str, float]:
    """What the server charged per request key: every reply it served, finished or not, at these prices."""
    costs: Counter = Counter()
    for a in attempts:
        if a.usage is not None:
            costs[a.key] += (a.usage["prompt_tokens"] * input_per_m + a.usage["completion_tokens"] * output_per_m) / 1e6
    return dict(costs)


def canary_hits(canary: str, paths: Iterable[Path] = (), texts: Iterable[str] = ()) -> list[str]:
    """Every file (under each path) and captured text that holds the canary: names for files, "output" for texts."""
    hits = []
    for root in paths:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file() and canary.encode() in path.read_bytes():
                hits.append(str(path))
    hits += ["output" for text in texts if canary in text]
    return hits


def replace_section(document: str, title: str, section: str) -> str:
    """`document` with its "## TITLE..." section (up to the next "## " heading) replaced by `section`;
    `section` is appended when there is none. A heading with a parenthesis after the title ("(2026-11-21)")
    is the same section, and repeats of it are removed."""
    heading = re.compile(rf"^## {re.escape(title)}(?: \(.*\))?[ \t]*$", re.MULTILINE)
    parts = re.split(r"(?m)^(?=## )", document)
    kept = [part for part in parts if not heading.match(part)]
    body = section.strip("\n") + "\n"
    if len(kept) == len(parts):
        return document.rstrip("\n") + "\n\n" + body if document.strip() else body
    first = next(i for i, part in enumerate(parts) if heading.match(part))
    before = "".join(part for part in parts[:first] if not heading.match(part))
    after = "".join(part for part in parts[first + 1:] if not heading.match(part))
    return before + body + ("\n" + after if after else "")
