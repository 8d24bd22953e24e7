"""Which transaction ids the lake sink has landed, and in which batch file (its idempotency index)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

_CHUNK = 500  # ids per IN (...) query, under SQLite's variable limit


class LandedIndex:
    """A SQLite table `txn_id -> batch name`, written after the batch's files and before its checkpoint."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.execute("CREATE TABLE IF NOT EXISTS landed (txn_id TEXT PRIMARY KEY, batch TEXT NOT NULL)")

    def landed_elsewhere(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        """The ids among `txn_ids` already landed by a batch other than `batch`."""
        found: set[str] = set()
        for i in range(0, len(txn_ids), _CHUNK):
            part = list(txn_ids[i : i + _CHUNK])
            marks = ",".join("?" * len(part))
            rows = self.con.execute(
                f"SELECT txn_id FROM landed WHERE batch != ? AND txn_id IN ({marks})", [batch, *part]
            )
            found.update(r[0] for r in rows)
        return found

    def record(self, txn_ids: Sequence[str], batch: str) -> None:
        self.con.execute("BEGIN")
        self.con.executemany(
            "INSERT INTO landed (txn_id, batch) VALUES (?, ?) "
            "ON CONFLICT(txn_id) DO UPDATE SET batch = excluded.batch",
            [(t, batch) for t in txn_ids],
        )
        self.con.execute("COMMIT")

    def count(self) -> int:
        return self.con.execute("SELECT count(*) FROM landed").fetchone()[0]

    def close(self) -> None:
        self.con.close()
