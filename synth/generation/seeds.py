"""Seed tasks (and explanation-mode queries) from any dataset synth reads: synth and Self-Instruct task files,
Alpaca, Dolly, chat and ShareGPT rows, T0-style prompt/completion rows."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputFileError
from ..formats import ShapeError, Warn, iter_rows, to_task
from ..resources import seeds_dir
from ..tasks import Task


def default_seed_file() -> Path:
    return seeds_dir() / "general.jsonl"


def load_seeds(path: str | Path | None = None, *, origin: str = "seed", warn: Warn | None = None) -> list[Task]:
    """Tasks from `path` (a file or a folder of them); the bundled seeds by default. A row synth cannot read is an
    InputFileError naming its file and line."""
    path = Path(path) if path is not None else default_seed_file()
    tasks = []
    for row in iter_rows(path, warn=warn):
        try:
            tasks.append(to_task(row.data, origin))
        except ShapeError as exc:
            raise row.error(str(exc)) from None
    if not tasks:
        raise InputFileError(path, "holds no tasks; add at least one row with an instruction")
    return unique_ids(tasks)


def unique_ids(tasks: list[Task]) -> list[Task]:
    """Every task with an id of its own: a repeated id gets the first free `#n` suffix, so it can clash neither
    with an earlier repeat nor with a task that already carries that suffix."""
    taken = {t.id for t in tasks}
    seen: set[str] = set()
    for task in tasks:
        if task.id in seen:
            n = 1
            while f"{task.id}#{n}" in taken:
                n += 1
            task.id = f"{task.id}#{n}"
            taken.add(task.id)
        seen.add(task.id)
    return tasks
