"""Local online store: a dict in memory, snapshotted to a SQLite file in one transaction on demand.

Reads and writes never touch the disk; `snapshot()` writes the keys changed since the last snapshot
(and deletes the removed ones); opening the store restores the last snapshot. The store keeps one SQLite
connection for its snapshots (opened at the first one, reopened in a forked child) rather than one per
snapshot: closing a WAL connection checkpoints the log, which would cost every batch a checkpoint.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from cdp.settings import Settings


class LocalOnlineStore:
    """In-memory state with a durable SQLite snapshot at `path` (None: memory only)."""

    reads_in_process = True  # `get_many` is a dict lookup: a caller may read on an event loop

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._data: dict[str, bytes] = {}
        self._dirty: set[str] = set()
        self._deleted: set[str] = set()
        self._conn: sqlite3.Connection | None = None
        self._conn_pid = 0
        self._lock = threading.Lock()
        if path is not None and path.exists():
            self._data = dict(self._connection().execute("SELECT key, state FROM online_state").fetchall())

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalOnlineStore:
        return cls(settings.state_dir / "online_features.sqlite")

    def _connection(self) -> sqlite3.Connection:
        """The store's connection, opened on first use (and again in a forked child)."""
        assert self.path is not None
        if self._conn is None or self._conn_pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False)  # used under `self._lock`
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS online_state (key TEXT PRIMARY KEY, state BLOB NOT NULL) STRICT"
            )
            self._conn, self._conn_pid = conn, os.getpid()
        return self._conn

    def close(self) -> None:
        """Close the snapshot connection (the next snapshot opens a new one)."""
        with self._lock:
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        data = self._data
        return {k: data[k] for k in keys if k in data}

    def put_many(self, items: Mapping[str, bytes]) -> None:
        self._data.update(items)
        self._dirty.update(items)
        self._deleted.difference_update(items)

    def delete_many(self, keys: Iterable[str]) -> None:
        for k in keys:
            self._data.pop(k, None)
            self._dirty.discard(k)
            self._deleted.add(k)

    def keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self._data if k.startswith(prefix))

    def snapshot(self) -> int:
        if self.path is None:
            return 0
        written = sorted(self._dirty)
        with self._lock:
            conn = self._connection()
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO online_state (key, state) VALUES (?, ?)",
                    [(k, self._data[k]) for k in written],
                )
                conn.executemany(
                    "DELETE FROM online_state WHERE key = ?", [(k,) for k in sorted(self._deleted)]
                )
        self._dirty.clear()
        self._deleted.clear()
        return len(written)
