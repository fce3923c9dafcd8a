"""The prompts an evaluation asks: a student's own held-out split, any dataset synth reads, or the bundled set.

    held-out split   provenance.json of a `synth train` output: the data it read and the ids it held out
    --tasks FILE     any dataset synth reads (synth.formats): instructions, optional inputs, optional references
                     (an answer the row's shape carries, or a `reference` field)
    bundled          evals/heldout.jsonl: 180 tasks of our own across the twelve task kinds, sharing none with seeds/
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputFileError
from ..files import read_json_object
from ..formats import ShapeError, examples, read_rows
from ..resources import evals_dir

BUNDLED = "bundled"


@dataclass
class EvalTask:
    id: str
    messages: list[dict[str, str]]         # the prompt: system (if any), then the user turn(s)
    reference: str | None = None
    instruction: str = ""
    input: str = ""
    kind: str | None = None
    is_classification: bool = False

    @property
    def prompt(self) -> str:
        """The last user turn: what the models answer."""
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")

    @property
    def system(self) -> str | None:
        return next((m["content"] for m in self.messages if m["role"] == "system"), None)


def bundled_tasks_path() -> Path:
    return evals_dir() / "heldout.jsonl"


def load_task_file(source: str | Path) -> list[EvalTask]:
    """Every prompt in a dataset synth reads; a row's last assistant answer, or its `reference`, is the reference."""
    tasks, seen = [], set()
    for row in read_rows(source):
        try:
            found = examples(row.data)
        except ShapeError as exc:
            raise row.error(str(exc)) from None
        for number, ex in enumerate(found):
            messages = ex.chat()
            reference = row.data.get("reference") if isinstance(row.data.get("reference"), str) else None
            if messages[-1]["role"] == "assistant":
                reference, messages = messages[-1]["content"], messages[:-1]
            base = ex.id or (f"line-{row.line}" if row.line is not None else f"item-{row.index}")
            task_id = _unique(base if len(found) == 1 else f"{base}#{number}", seen)
            tasks.append(EvalTask(task_id, messages, reference or None, ex.instruction, ex.input, ex.kind,
                                  bool(ex.is_classification)))
    return tasks


def _unique(task_id: str, seen: set[str]) -> str:
    candidate, n = task_id, 1
    while candidate in seen:
        candidate, n = f"{task_id}#{n}", n + 1
    seen.add(candidate)
    return candidate


def held_out_split(student: Path) -> tuple[list[EvalTask], dict[str, Any]] | None:
    """The held-out conversations of a `synth train` output folder, or None when it recorded none."""
    from ..training.config import TrainConfig
    from ..training.data import erase_prompts, fingerprint, load_conversations

    provenance = read_json_object(student / "provenance.json", required=False)
    eval_ids = provenance.get("eval_ids") or []
    data = (provenance.get("data") or {}).get("path")
    if not eval_ids or not isinstance(data, str):
        return None
    if not Path(data).exists():
        raise InputFileError(data, f"the data {student} was trained on is gone; pass --tasks FILE or --tasks "
                                   f"{BUNDLED} to evaluate on other prompts")
    conversations = load_conversations(data)
    config_file = student / "train_config.json"
    if config_file.is_file():
        config = TrainConfig.load(student)
        if config.erase_prompt:
            conversations = erase_prompts(conversations, config.generic_system)
    by_id = {c.id: c for c in conversations}
    missing = [i for i in eval_ids if i not in by_id]
    if missing:
        raise InputFileError(data, f"no longer holds the held-out example(s) {', '.join(missing[:3])} that "
                                   f"{student} recorded; pass --tasks FILE or --tasks {BUNDLED}")
    tasks = []
    for task_id in eval_ids:
        messages = by_id[task_id].messages
        user = messages[-2]["content"] if len(messages) > 1 else ""
        tasks.append(EvalTask(task_id, [dict(m) for m in messages[:-1]], messages[-1]["content"], user))
    changed = fingerprint(data).get("sha256") != (provenance.get("data") or {}).get("sha256")
    return tasks, {"source": "held_out", "data": data, "data_changed": changed, "student": str(student)}


def choose(tasks: list[EvalTask], limit: int | None, seed: int) -> list[EvalTask]:
    """At most `limit` tasks, a seeded sample kept in the source's order."""
    if limit is None or limit >= len(tasks):
        return tasks
    picked = set(random.Random(seed).sample(range(len(tasks)), limit))
    return [t for i, t in enumerate(tasks) if i in picked]
