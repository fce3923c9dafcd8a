"""Stage 1 on every core: a batch's rows are split between this process and worker processes that hold the same
n-gram indexes, so the n-gram stage is not bound to one core.

    workers = NgramWorkers(indexes, processes=2)
    per_index = workers.match(texts)        # for each index, each row's NgramMatch or None, as index.match gives
    workers.close()

Workers start on the first batch of more than one chunk (CHUNK_ROWS rows), so the small batches `generate
--decontaminate` checks never start one. They are forked, so they share the indexes already in memory and import
nothing, and each gets its chunk straight down a pipe (an executor's helper threads would wait for this process's GIL
and delay every hand-over). Where fork is not available (Windows) the stage stays in this process: spawned workers
would run the caller's main script again, and a script without a `__main__` guard would repeat its own work. A worker
that dies stops them all; the stage then goes on in this process alone, with the same results, and says so once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from typing import Callable

from .ngram import NgramIndex, NgramMatch

# Rows matched together: the array work runs fastest on a few hundred rows at a time (its sorts stay in cache), so a
# big batch is matched in chunks of this many, and the chunks are shared out between the processes.
CHUNK_ROWS = 256


def default_processes() -> int:
    """One per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # not on Linux
        return max(1, os.cpu_count() or 1)


class NgramWorkers:
    def __init__(self, indexes: list[NgramIndex], processes: int | None = None,
                 log: Callable[[str], None] | None = None):
        self.indexes = indexes
        self.processes = processes if processes is not None else default_processes()
        self.log = log or (lambda line: None)
        self._workers: list[_Worker] = []
        self._broken = "fork" not in multiprocessing.get_all_start_methods()

    @property
    def parallel(self) -> bool:
        return self.processes > 1 and not self._broken

    def match(self, texts: list[list[str]]) -> list[list[NgramMatch | None]]:
        chunks = [texts[start:start + CHUNK_ROWS] for start in range(0, len(texts), CHUNK_ROWS)]
        if not self.parallel or len(chunks) < 2:
            return _joined([_match_all(self.indexes, chunk) for chunk in chunks], len(self.indexes))
        found = []
        try:
            workers = self.start()
            for first in range(0, len(chunks), len(workers) + 1):     # a round: a chunk each, this process too
                sent = list(zip(workers, chunks[first + 1:first + 1 + len(workers)]))
                for worker, chunk in sent:
                    worker.conn.send(chunk)
                found.append(_match_all(self.indexes, chunks[first]))
                found += [worker.conn.recv() for worker, _ in sent]
        except (OSError, EOFError) as exc:
            return self._alone(texts, exc)
        return _joined(found, len(self.indexes))

    def start(self) -> list["_Worker"]:
        """The worker processes, started on the first call."""
        if not self._workers:
            context = multiprocessing.get_context("fork")
            self._workers = [_Worker(context, self.indexes) for _ in range(self.processes - 1)]
        return self._workers

    def close(self) -> None:
        for worker in self._workers:
            worker.stop()
        self._workers = []

    def _alone(self, texts: list[list[str]], exc: BaseException) -> list[list[NgramMatch | None]]:
        self._broken = True
        self.log(f"an n-gram worker process stopped ({type(exc).__name__}: {exc or 'no detail'}); "
                 "going on in one process")
        self.close()
        return self.match(texts)


class _Worker:
    """One forked process that matches the chunks sent down its pipe and sends each chunk's matches back."""

    def __init__(self, context, indexes: list[NgramIndex]):
        self.conn, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, self.conn, indexes), daemon=True,
                                       name="synth-ngram")
        self.process.start()
        theirs.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.conn.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _serve(conn: Connection, parents_end: Connection, indexes: list[NgramIndex]) -> None:
    parents_end.close()                 # so a parent that dies ends the loop below with EOFError
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # Ctrl-C is the parent's to handle; no traceback from here
    while True:
        try:
            texts = conn.recv()
        except (EOFError, OSError):
            return
        if texts is None:
            return
        conn.send(_match_all(indexes, texts))


def _joined(parts: list[list[list[NgramMatch | None]]], indexes: int) -> list[list[NgramMatch | None]]:
    """Per index, the matches of every part's rows, in order."""
    return [[match for part in parts for match in part[i]] for i in range(indexes)]


def _match_all(indexes: list[NgramIndex], texts: list[list[str]]) -> list[list[NgramMatch | None]]:
    return [index.match(texts) for index in indexes]
