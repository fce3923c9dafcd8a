"""The run folder: config.json, manifest.json, tasks.jsonl, data.jsonl, rejected.jsonl and the request cache.

Everything is append-only and crash-safe; on --resume the complete lines are the state.
"""

from __future__ import annotations

import contextlib
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import GenerateConfig
from .settings import load_config_file
from .errors import RunFolderError
from .jsonl import JsonlAppender, read_complete_lines, write_json_atomic
from .tasks import Task

CONFIG = "config.json"
MANIFEST = "manifest.json"
TASKS = "tasks.jsonl"
DATA = "data.jsonl"
REJECTED = "rejected.jsonl"
CACHE = "cache.sqlite"
SPEND = "spend.jsonl"
GATE = "gate"


@dataclass
class RunState:
    """What a run folder already holds."""

    machine_tasks: list[Task] = field(default_factory=list)
    task_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    completed_tasks: set[str] = field(default_factory=set)
    record_ids: set[str] = field(default_factory=set)
    rejected_ids: set[str] = field(default_factory=set)
    rejected: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    bootstrap_requests: int = 0
    unfinished_bootstraps: dict[int, list[str]] = field(default_factory=dict)   # number -> example ids shown
    manifest: dict[str, Any] = field(default_factory=dict)


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    @classmethod
    def create(cls, path: str | Path, *, overwrite: bool = False) -> "RunFolder":
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            if not overwrite:
                raise RunFolderError(f"{path} already exists; pass --resume to continue it or --overwrite to start again")
            if not (path / CONFIG).exists() and not (path / DATA).exists():
                raise RunFolderError(f"{path} is not a synth run folder; refusing to overwrite it, pick another --out")
            shutil.rmtree(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"cannot create {path}: {exc.strerror}") from None
        return cls(path)

    @classmethod
    def existing(cls, path: str | Path) -> "RunFolder":
        folder = cls(path)
        if not folder.file(CONFIG).is_file():
            raise RunFolderError(f"{path} is not a synth run folder (no {CONFIG}); check the path given to --resume")
        return folder

    def load_config(self) -> GenerateConfig:
        return GenerateConfig.from_dict(load_config_file(self.file(CONFIG)), str(self.file(CONFIG)))

    def save_config(self, config: GenerateConfig) -> None:
        write_json_atomic(self.file(CONFIG), config.to_dict())

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_atomic(self.file(MANIFEST), manifest)

    def load_state(self) -> RunState:
        state = RunState()
        with self._reading(TASKS):
            for row in read_complete_lines(self.file(TASKS)):
                status = row.get("status")
                if status == "bootstrap_started":
                    state.unfinished_bootstraps[row["bootstrap_no"]] = row["pool_ids"]
                    state.bootstrap_requests = max(state.bootstrap_requests, row["bootstrap_no"] + 1)
                elif status == "bootstrap_done":
                    state.unfinished_bootstraps.pop(row["bootstrap_no"], None)
                elif status == "completed":
                    state.completed_tasks.add(row["id"])
                elif status == "accepted":
                    state.machine_tasks.append(Task.from_dict(row["task"]))
                    state.task_meta[row["task"]["id"]] = row
                    state.bootstrap_requests = max(state.bootstrap_requests, row.get("bootstrap_no", -1) + 1)
        with self._reading(DATA):
            state.record_ids = {row["id"] for row in read_complete_lines(self.file(DATA))}
        with self._reading(REJECTED):
            for row in read_complete_lines(self.file(REJECTED)):
                state.rejected_ids.add(row["id"])
                (state.failed if row.get("kind") == "failed" else state.rejected)[row["reason"]] += 1
                if "bootstrap_no" in row:
                    state.bootstrap_requests = max(state.bootstrap_requests, row["bootstrap_no"] + 1)
        manifest = self.file(MANIFEST)
        if manifest.is_file():
            try:
                state.manifest = load_config_file(manifest)
            except Exception:  # a manifest is a summary; the JSONL files are the truth
                state.manifest = {}
        state.bootstrap_requests = max(state.bootstrap_requests, int(state.manifest.get("counts", {}).get("bootstrap_requests", 0)))
        return state

    @contextlib.contextmanager
    def _reading(self, name: str):
        """A line synth did not write (a hand edit, another tool's file) is a one-line error, not a traceback."""
        try:
            yield
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise RunFolderError(f"{self.file(name)}: holds a line synth did not write ({type(exc).__name__}: {exc}); "
                                 "restore the file, or start again with --overwrite") from None

    def appenders(self) -> dict[str, JsonlAppender]:
        return {name: JsonlAppender(self.file(name)) for name in (TASKS, DATA, REJECTED)}
