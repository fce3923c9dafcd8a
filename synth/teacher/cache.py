"""A request cache keyed by a hash of the whole request, so no call is paid for twice."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def request_key(request: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the request: model, messages and every parameter."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RequestCache:
    """SQLite table of request key -> completed response. Each put commits, so a crash keeps what was paid for."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)")
        except sqlite3.Error as exc:
            raise ConfigError(f"{self.path}: cannot be used as the request cache ({exc}); "
                              "give --cache a new file or an earlier run's cache.sqlite") from None

    @staticmethod
    def check(path: Path) -> None:
        """Refuse a path that can never be a cache (a folder, a file that is not one), touching nothing."""
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder; give --cache a file (a new one, or an earlier run's cache.sqlite)")
        if not path.is_file():
            return
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)      # reads, never writes
            try:
                db.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise ConfigError(f"{path}: cannot be used as the request cache ({exc}); give --cache a new file or an "
                              "earlier run's cache.sqlite") from None

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, response: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, response) VALUES (?, ?)", (key, json.dumps(response))
        )

    def delete(self, key: str) -> None:
        """Forget a reply (one that did not parse), so the next ask is really sent again."""
        self._db.execute("DELETE FROM responses WHERE key = ?", (key,))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
