"""Append-only JSONL files that survive a crash: only complete lines count."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

# Test hook for the crash battery: "data.jsonl:3" kills the process half-way through writing line 3 of data.jsonl.
_KILL_MID_WRITE = os.environ.get("SYNTH_TEST_KILL_MID_WRITE", "")


def read_complete_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Yield every complete, parseable line of a JSONL file written by `JsonlAppender`.

    A final line without its newline is a write cut short by a crash and is skipped.
    """
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                yield json.loads(raw)
            except ValueError:
                continue


def complete_length(path: Path) -> int:
    """Byte length of the file up to and including its last newline."""
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        data = fh.read()
    return data.rfind(b"\n") + 1


class JsonlAppender:
    """Writes one JSON object per line with a single write call, so a line is either whole or cut at the tail.

    Opening drops a cut tail left by an earlier crash, so the next line starts clean.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keep = complete_length(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        os.ftruncate(self._fd, keep)
        os.lseek(self._fd, keep, os.SEEK_SET)

    def append(self, obj: dict[str, Any]) -> None:
        data = (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")
        if _KILL_MID_WRITE:
            self._maybe_die_mid_write(data)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _maybe_die_mid_write(self, data: bytes) -> None:
        name, _, line = _KILL_MID_WRITE.partition(":")
        self._lines = getattr(self, "_lines", 0) + 1
        if self.path.name == name and self._lines == int(line or 1):
            import signal

            os.write(self._fd, data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_json_atomic(path: Path, obj: Any) -> None:
    """Replace `path` with `obj` as indented JSON, never leaving a half-written file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
