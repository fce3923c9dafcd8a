"""synth's own files: append-only logs that survive a crash, atomic JSON writes, a lock per output folder, and the
safe replacement of an output folder.

Datasets (what users bring and what exports write) go through `synth.formats`; this module is for the files synth
keeps for itself (a run's tasks, records, rejections and spend ledger, a student's metrics), whose only damage a
crash can do is to cut the last line short.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ConfigError, RunFolderBusy, RunFolderError, StorageError

# Test hook for the crash battery: "data.jsonl:3" kills the process half-way through writing line 3 of data.jsonl.
_KILL_MID_WRITE = os.environ.get("SYNTH_TEST_KILL_MID_WRITE", "")
LOCK = "run.lock"


def to_json(obj: Any) -> bytes:
    """`obj` as one line of strict JSON in UTF-8. NaN and infinity become null and invalid text (a lone surrogate)
    becomes U+FFFD, so nothing synth writes is ever unreadable; the repair runs only when it is needed."""
    try:
        return json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        from .formats import finite, repair

        return json.dumps(finite(repair(obj)), ensure_ascii=False, allow_nan=False).encode("utf-8")


# ---- append-only logs ------------------------------------------------------------------------------------

def read_complete_lines(path: Path, check: Callable[[Any], str | None] | None = None, *, expect: type = dict
                        ) -> Iterator[Any]:
    """Every complete line of a log written by `JsonlAppender`. A last line without its newline is a write cut short
    by a crash and is skipped. A complete line that is not JSON of the `expect`ed type, or that `check` finds wrong
    (it returns what is wrong), was not written by synth: a RunFolderError names the file and line."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                break
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError:
                raise damaged(path, number, "is not valid JSON") from None
            problem = f"is not a JSON {'object' if expect is dict else expect.__name__}" \
                if not isinstance(row, expect) else (check(row) if check else None)
            if problem:
                raise damaged(path, number, problem)
            yield row


def damaged(path: Path, line: int | None, problem: str) -> RunFolderError:
    where = f"{path}:{line}" if line else str(path)
    return RunFolderError(f"{where}: {problem}, so synth did not write it; restore the file from a backup, or "
                          "start again in a new folder")


def fields_problem(row: dict[str, Any], **kinds: type | tuple[type, ...]) -> str | None:
    """What is wrong with `row`'s fields, by the types given (bool never counts as int); None when all fit."""
    for name, kind in kinds.items():
        value = row.get(name)
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            return f"its {name!r} is {json.dumps(value)[:40]}, not {_kind_name(kind)}"
    return None


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind) -> str:
    names = {str: "a string", int: "an integer", float: "a number", dict: "an object", list: "a list",
             bool: "true or false", type(None): "null"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


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
        data = to_json(obj) + b"\n"
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


# ---- whole files -----------------------------------------------------------------------------------------

def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text`, never leaving a half-written file: written beside it, synced, renamed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Replace `path` with `obj` as indented strict JSON (NaN and infinity written as null)."""
    from .formats import finite, repair

    write_text_atomic(path, json.dumps(finite(repair(obj)), indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def read_json_object(path: Path, *, required: bool = True) -> dict[str, Any]:
    """A JSON object file of synth's own; {} when it is missing and not required. Damage is one RunFolderError."""
    if not path.is_file():
        if required:
            raise RunFolderError(f"{path}: missing")
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise damaged(path, None, "is not valid JSON") from None
    if not isinstance(value, dict):
        raise damaged(path, None, f"holds a JSON {type(value).__name__}, not an object")
    return value


# ---- output folders --------------------------------------------------------------------------------------

def refuse_overlap(out: Path, source: Path, flag: str = "--out") -> None:
    """An output must never be, contain, or sit inside the data it reads."""
    target, data = Path(out).resolve(), Path(source).resolve()
    if target == data or data.is_relative_to(target):
        raise ConfigError(f"{flag} {out} is or holds the input {source}; writing there could destroy it, pick "
                          "another path")
    if data.is_dir() and target.is_relative_to(data):
        raise ConfigError(f"{flag} {out} sits inside the input {source}; pick a path outside it")


class FolderLock:
    """An exclusive lock on an output folder (`run.lock`, held with fcntl), released on exit and by the kernel when
    the process dies, so a second process on the same folder gets one line naming the first one's PID."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._fd = -1

    def acquire(self) -> "FolderLock":
        import fcntl

        path = self.folder / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot write to {self.folder} ({exc.strerror}); check its permissions and free "
                               "space") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunFolderBusy(f"{self.folder} is in use by process {holder}; wait for it to finish (or stop "
                                    "it) before starting another run on the same folder") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class FolderSwap:
    """Replace an output folder without losing it on a failed start.

    `begin()` moves the old folder aside (a sibling named `.NAME.replaced-TIME`) and makes an empty one; `commit()`,
    called once the new run has made its first progress, deletes the old one; `rollback()` (on a failed start)
    removes the new folder and puts the old one back exactly as it was.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.aside: Path | None = None
        self.done = False

    def begin(self) -> "FolderSwap":
        if self.path.exists():
            self.aside = self.path.with_name(f".{self.path.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
            os.rename(self.path, self.aside)
        self.path.mkdir(parents=True)
        return self

    def commit(self) -> None:
        if not self.done:
            self.done = True
            if self.aside is not None:
                shutil.rmtree(self.aside, ignore_errors=True)

    def rollback(self) -> None:
        if self.done:
            return
        self.done = True
        if self.aside is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            os.rename(self.aside, self.path)
