"""The run folder: config.json, manifest.json, tasks.jsonl, data.jsonl, rejected.jsonl, spend.jsonl, the request
cache and the gate's store, held by one process at a time (run.lock).

Everything is append-only and crash-safe; on --resume the complete lines are the state. Every file is read through
a checked loader: a line synth did not write is a one-line error naming the file and line, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunFolderError, StorageError
from ..files import (LOCK, FolderLock, FolderSwap, JsonlAppender, damaged, fields_problem, read_complete_lines,
                     read_json_object, write_json_atomic)
from ..formats import DATA_SUFFIXES
from ..tasks import Task
from .config import GenerateConfig

CONFIG = "config.json"
MANIFEST = "manifest.json"
TASKS = "tasks.jsonl"
DATA = "data.jsonl"
REJECTED = "rejected.jsonl"
CACHE = "cache.sqlite"
SPEND = "spend.jsonl"
GATE = "gate"
SCORES = "scores.jsonl"
REPORT = "report"
DECONTAMINATION = "decontamination.json"   # generate --decontaminate's summary
EVAL_LINKS = "evals.jsonl"                 # synth eval's pointers to evaluations of students trained on the run
# Everything a run folder may hold: its own files, and datasets exported beside them (make demo does that).
OWN_FILES = (CONFIG, MANIFEST, TASKS, DATA, REJECTED, CACHE, CACHE + "-wal", CACHE + "-shm", SPEND, LOCK, GATE,
             REPORT, "scores.jsonl", "scores.summary.json", "batches.jsonl", "evals", EVAL_LINKS, "decontam", DECONTAMINATION)


@dataclass
class RunState:
    """What a run folder already holds."""

    machine_tasks: list[Task] = field(default_factory=list)
    task_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    completed_tasks: set[str] = field(default_factory=set)
    record_ids: set[str] = field(default_factory=set)
    rejected_ids: set[str] = field(default_factory=set)
    failed_ids: dict[str, str] = field(default_factory=dict)   # unresolved failures (id -> reason): sent again
    rejected: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    bootstrap_requests: int = 0
    unfinished_bootstraps: dict[int, dict[str, Any]] = field(default_factory=dict)   # number -> its started row
    proposals: list[dict[str, Any]] = field(default_factory=list)                  # every proposal ever started
    manifest: dict[str, Any] = field(default_factory=dict)


def foreign_entries(path: Path) -> list[str]:
    """What a folder holds that a synth run folder would not: anything but its own files and exported datasets."""
    found = []
    for entry in sorted(path.iterdir()):
        own = entry.name in OWN_FILES
        export = entry.is_file() and entry.name.lower().endswith(DATA_SUFFIXES)
        if not own and not export:
            found.append(entry.name + ("/" if entry.is_dir() else ""))
    return found


def run_folder_problem(path: Path) -> str | None:
    """Why `path` is not provably a synth run folder (its config, its manifest, nothing foreign), or None."""
    try:
        config = read_json_object(path / CONFIG)
        manifest = read_json_object(path / MANIFEST)
    except RunFolderError:
        return f"it has no readable {CONFIG} and {MANIFEST} of a synth run"
    if "synth_version" not in manifest or not set(config) <= {f for f in GenerateConfig.__dataclass_fields__}:
        return f"its {CONFIG} and {MANIFEST} are not a synth run's"
    foreign = foreign_entries(path)
    if foreign:
        return f"it holds {', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}, which synth did not write"
    return None


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = FolderLock(self.path)
        self._swap: FolderSwap | None = None
        self._fresh = False            # made by this claim: removed again if the run never got going

    def file(self, name: str) -> Path:
        return self.path / name

    # ---- opening --------------------------------------------------------------------------------

    @classmethod
    def existing(cls, path: str | Path) -> "RunFolder":
        folder = cls(path)
        if not folder.file(CONFIG).is_file():
            raise RunFolderError(f"{path} is not a synth run folder (no {CONFIG}); check the path given to --resume")
        return folder

    @classmethod
    def check_new(cls, path: str | Path, *, overwrite: bool = False) -> "RunFolder":
        """A folder for a new run, checked but not touched: nothing is made or moved until `claim()`."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RunFolderError(f"{path} is a file; --out names the run folder to create")
        if path.is_dir() and any(path.iterdir()):
            if not overwrite:
                raise RunFolderError(f"{path} already exists; pass --resume to continue it or --overwrite to start again")
            problem = run_folder_problem(path)
            if problem:
                raise RunFolderError(f"{path} is not provably a synth run folder ({problem}); refusing to replace "
                                     "it: pick another --out")
        return cls(path)

    def claim(self, *, replace: bool = False) -> "RunFolder":
        """Take the folder for this process: lock it (a second process gets one line naming the holder) and, for a
        new run, make it; with `replace`, the old run is moved aside until `commit()`."""
        if replace and self.path.is_dir() and any(self.path.iterdir()):
            with FolderLock(self.path):               # nobody else may be running in the folder being replaced
                pass
            self._swap = FolderSwap(self.path).begin()
        else:
            self._fresh = not self.path.exists() or not any(self.path.iterdir())
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"cannot create {self.path}: {exc.strerror}") from None
        self._lock.acquire()
        return self

    def carry_over(self, relative: Path) -> None:
        """Move a file of the replaced run (a shared request cache given by path) into the new folder."""
        if self._swap is None or self._swap.aside is None:
            return
        for suffix in ("", "-wal", "-shm"):
            old = self._swap.aside / (str(relative) + suffix)
            if old.exists():
                new = self.path / (str(relative) + suffix)
                new.parent.mkdir(parents=True, exist_ok=True)
                os.replace(old, new)

    def commit(self) -> None:
        """The new run has made progress: the run it replaced is deleted now, and not before."""
        if self._swap is not None:
            self._swap.commit()

    def release(self) -> None:
        """Unlock; a replacement that never made progress (never committed) puts the old run back as it was."""
        self._lock.release()
        if self._swap is not None:
            self._swap.rollback()
        elif self._fresh and not any(self.file(n).is_file() and self.file(n).stat().st_size
                                     for n in (DATA, REJECTED, TASKS)):
            shutil.rmtree(self.path, ignore_errors=True)   # a set-up that failed leaves no folder to refuse later

    # ---- reading and writing --------------------------------------------------------------------

    def load_config(self) -> GenerateConfig:
        values = read_json_object(self.file(CONFIG))
        return GenerateConfig.from_dict(values, str(self.file(CONFIG)))

    def save_config(self, config: GenerateConfig) -> None:
        write_json_atomic(self.file(CONFIG), config.to_dict())

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.file(MANIFEST), manifest)

    def load_state(self) -> RunState:
        state = RunState()
        for row in read_complete_lines(self.file(TASKS), _task_line_problem):
            status = row["status"]
            if status == "bootstrap_started":
                state.unfinished_bootstraps[row["bootstrap_no"]] = row
                state.proposals.append(row.get("proposal") or {"number": row["bootstrap_no"]})
                state.bootstrap_requests = max(state.bootstrap_requests, row["bootstrap_no"] + 1)
            elif status == "bootstrap_done":
                state.unfinished_bootstraps.pop(row["bootstrap_no"], None)
            elif status == "completed":
                state.completed_tasks.add(row["id"])
            elif status == "accepted":
                state.machine_tasks.append(Task.from_dict(row["task"]))
                state.task_meta[row["task"]["id"]] = row
                state.bootstrap_requests = max(state.bootstrap_requests, row.get("bootstrap_no", -1) + 1)
        state.record_ids = {row["id"] for row in read_complete_lines(self.file(DATA), _record_line_problem)}
        for row in read_complete_lines(self.file(REJECTED), _rejected_line_problem):
            if row["kind"] == "failed":
                if row["id"] not in state.failed_ids:
                    state.failed_ids[row["id"]] = row["reason"]
                    state.failed[row["reason"]] += 1
            elif row["kind"] == "retried":          # a failure that a later session answered
                if row["id"] in state.failed_ids:
                    state.failed[state.failed_ids.pop(row["id"])] -= 1
            else:
                state.rejected_ids.add(row["id"])
                state.rejected[row["reason"]] += 1
            if isinstance(row.get("bootstrap_no"), int):
                state.bootstrap_requests = max(state.bootstrap_requests, row["bootstrap_no"] + 1)
        state.failed = +state.failed
        state.manifest = read_json_object(self.file(MANIFEST), required=False)
        counts = state.manifest.get("counts", {})
        if not isinstance(counts, dict) or not isinstance(counts.get("bootstrap_requests", 0), int):
            raise damaged(self.file(MANIFEST), None, "holds counts that are not whole numbers")
        state.bootstrap_requests = max(state.bootstrap_requests, counts.get("bootstrap_requests", 0))
        return state

    def appenders(self) -> dict[str, JsonlAppender]:
        return {name: JsonlAppender(self.file(name)) for name in (TASKS, DATA, REJECTED)}


def _task_line_problem(row: dict[str, Any]) -> str | None:
    status = row.get("status")
    if status in ("bootstrap_started", "bootstrap_done"):
        problem = fields_problem(row, bootstrap_no=int)
        if not problem and status == "bootstrap_started":
            problem = fields_problem(row, pool_ids=list) or (fields_problem(row, proposal=dict)
                                                              if "proposal" in row else None)
        return problem
    if status == "completed":
        return fields_problem(row, id=str)
    if status == "accepted":
        problem = fields_problem(row, task=dict)
        if problem:
            return problem
        problem = fields_problem(row["task"], id=str, instruction=str)
        if problem:
            return "its task: " + problem
        return fields_problem(row, bootstrap_no=int) if "bootstrap_no" in row else None
    return f"its status is {json.dumps(status)[:30]}, not one synth writes"


def _record_line_problem(row: dict[str, Any]) -> str | None:
    return fields_problem(row, id=str)


def _rejected_line_problem(row: dict[str, Any]) -> str | None:
    return fields_problem(row, id=str, kind=str, reason=str)
