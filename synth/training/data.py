"""Read training conversations from a synth run folder or an exported dataset, and split off an eval set.

Every source becomes a list of `Conversation`: an id and chat messages (system?, user, assistant). Any dataset
synth reads is accepted (`synth.formats`): a run folder, openai-chat, sharegpt, alpaca, dolly, prompt/completion rows,
in JSON, JSONL, .gz, Parquet or a Hugging Face folder.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..formats import ShapeError, Warn, dataset_files, examples, read_rows


@dataclass
class Conversation:
    id: str
    messages: list[dict[str, str]]


def load_conversations(source: str | Path, warn: Warn | None = None, *, select: int | None = None,
                       strategy: str = "deita", scores: str | None = None) -> list[Conversation]:
    """Every conversation in `source`, through the formats reader; a row that is not a conversation ending in a
    non-empty assistant answer is a one-line InputFileError naming its file and line.

    With `select`, only the `select` rows `synth select` would keep with `strategy` (and the judge's scores, from
    `scores` or where `synth judge` writes them), in their order in the file, so the eval split stays seeded."""
    rows = read_rows(source, warn=warn)
    if select:
        from ..quality.select import SelectConfig, find_scores, select_rows

        config = SelectConfig(budget=select, strategy=strategy, scores=scores)
        found, _ = find_scores(Path(source), config)
        rows = list(rows)
        order = {id(row): n for n, row in enumerate(rows)}
        rows = sorted(select_rows(rows, select, strategy, scores=found, config=config), key=lambda r: order[id(r)])
    conversations = []
    for row in rows:
        try:
            found = examples(row.data)
        except ShapeError as exc:
            raise row.error(str(exc)) from None
        for number, ex in enumerate(found):
            messages = ex.chat()
            if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
                raise row.error("the conversation must end with a non-empty assistant message")
            fallback = f"line-{row.line}" if row.line is not None else f"item-{row.index}"
            row_id = ex.id or fallback
            conversations.append(Conversation(row_id if len(found) == 1 else f"{row_id}#{number}", messages))
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
    """Data provenance: the files read and one sha256 over them, so a student can be traced back to its exact data."""
    files = [f for f in dataset_files(Path(source)) if f.is_file()]
    if not files:
        return {"path": str(Path(source).resolve())}
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    target = files[0] if len(files) == 1 else Path(source)
    return {"path": str(target.resolve()), "sha256": digest.hexdigest(), "bytes": sum(f.stat().st_size for f in files)}
