"""The idempotency index in SQLite: a file per consumer in the state folder (local backend).

The file is `<state_dir>/<consumer>-landed.sqlite`, its table `landed`: the names the index was first
stored under, kept so an existing state folder goes on working.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.idempotency.port import Claim

if TYPE_CHECKING:
    from cdp.settings import Settings

_CHUNK = 500  # ids per IN (...) query, under SQLite's variable limit
FILE_SUFFIX = "-landed.sqlite"  # the stored names (see the module docstring)
TABLE = "landed"


class SqliteIdempotencyIndex:
    """`IdempotencyIndex` over a SQLite table `txn_id -> (batch, applied)` in WAL mode."""

    @classmethod
    def from_settings(cls, settings: Settings, consumer: str) -> SqliteIdempotencyIndex:
        """The index of `consumer` in the state folder (`<state_dir>/<consumer>-landed.sqlite`)."""
        return cls(index_file(settings, consumer))

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} "
            "(txn_id TEXT PRIMARY KEY, batch TEXT NOT NULL, applied INTEGER NOT NULL DEFAULT 1)"
        )
        columns = {row[1] for row in self.con.execute(f"PRAGMA table_info({TABLE})")}
        if "applied" not in columns:  # an index written before claims were marked applied
            self.con.execute(f"ALTER TABLE {TABLE} ADD COLUMN applied INTEGER NOT NULL DEFAULT 1")

    def lookup(self, txn_ids: Sequence[str]) -> dict[str, Claim]:
        found: dict[str, Claim] = {}
        ids = list(dict.fromkeys(txn_ids))
        for i in range(0, len(ids), _CHUNK):
            part = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(part))
            rows = self.con.execute(
                f"SELECT txn_id, batch, applied FROM {TABLE} WHERE txn_id IN ({marks})", part
            )
            found.update((t, Claim(b, bool(a))) for t, b, a in rows)
        return found

    def claimed_elsewhere(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        return {t for t, entry in self.lookup(txn_ids).items() if entry.batch != batch}

    def record(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        self.con.execute("BEGIN IMMEDIATE")
        try:
            self.con.executemany(
                f"INSERT INTO {TABLE} (txn_id, batch, applied) VALUES (?, ?, 0) "
                "ON CONFLICT(txn_id) DO NOTHING",
                [(t, batch) for t in txn_ids],
            )
            taken = self.claimed_elsewhere(txn_ids, batch)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return taken

    def mark_applied(self, txn_ids: Sequence[str], batch: str) -> None:
        self.con.execute("BEGIN IMMEDIATE")
        self.con.executemany(
            f"UPDATE {TABLE} SET applied = 1 WHERE txn_id = ? AND batch = ?", [(t, batch) for t in txn_ids]
        )
        self.con.execute("COMMIT")

    def count(self) -> int:
        return self.con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]

    def close(self) -> None:
        self.con.close()


def index_file(settings: Settings, consumer: str) -> Path:
    """Where the local index of `consumer` lives."""
    return settings.state_dir / f"{consumer}{FILE_SUFFIX}"
