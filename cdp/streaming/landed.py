"""Which transaction ids a stream consumer has landed, in which batch, and whether their effects are applied.

The index is what makes a consumer exactly-once by `txn_id`:
- `record(ids, batch)` claims the ids for `batch` (written after the batch's files, before its checkpoint).
  A claim is exclusive: an id already claimed by another batch is not taken over, and `record` returns it;
  claiming again for the same batch (a re-delivered batch rewriting its own files) is a no-op.
- `mark_applied(ids, batch)` records that the batch's side effects outside the lake (the cards' online
  state) are done. Ids claimed but not applied are those of a batch that crashed in between: the handler
  applies them on re-delivery instead of scoring them again.

The port (`LandedEntry`, `LandedIndex`) is in `cdp.streaming.landed_port`. Adapters: `SqliteLandedIndex`
(a file in the state folder, local) and `cdp.streaming.landed_dynamodb.DynamoDbLandedIndex` (Lambda has no
shared disk). `open_landed_index` picks one from the settings.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.streaming.landed_port import LandedEntry, LandedIndex

if TYPE_CHECKING:
    from cdp.settings import Settings

_CHUNK = 500  # ids per IN (...) query, under SQLite's variable limit


class SqliteLandedIndex:
    """A SQLite table `txn_id -> (batch, applied)` in WAL mode."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS landed "
            "(txn_id TEXT PRIMARY KEY, batch TEXT NOT NULL, applied INTEGER NOT NULL DEFAULT 1)"
        )
        columns = {row[1] for row in self.con.execute("PRAGMA table_info(landed)")}
        if "applied" not in columns:  # an index written before claims were marked applied
            self.con.execute("ALTER TABLE landed ADD COLUMN applied INTEGER NOT NULL DEFAULT 1")

    def lookup(self, txn_ids: Sequence[str]) -> dict[str, LandedEntry]:
        found: dict[str, LandedEntry] = {}
        ids = list(dict.fromkeys(txn_ids))
        for i in range(0, len(ids), _CHUNK):
            part = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(part))
            rows = self.con.execute(
                f"SELECT txn_id, batch, applied FROM landed WHERE txn_id IN ({marks})", part
            )
            found.update((t, LandedEntry(b, bool(a))) for t, b, a in rows)
        return found

    def landed_elsewhere(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        return {t for t, entry in self.lookup(txn_ids).items() if entry.batch != batch}

    def record(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        self.con.execute("BEGIN IMMEDIATE")
        try:
            self.con.executemany(
                "INSERT INTO landed (txn_id, batch, applied) VALUES (?, ?, 0) ON CONFLICT(txn_id) DO NOTHING",
                [(t, batch) for t in txn_ids],
            )
            taken = self.landed_elsewhere(txn_ids, batch)
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return taken

    def mark_applied(self, txn_ids: Sequence[str], batch: str) -> None:
        self.con.execute("BEGIN IMMEDIATE")
        self.con.executemany(
            "UPDATE landed SET applied = 1 WHERE txn_id = ? AND batch = ?", [(t, batch) for t in txn_ids]
        )
        self.con.execute("COMMIT")

    def count(self) -> int:
        return self.con.execute("SELECT count(*) FROM landed").fetchone()[0]

    def close(self) -> None:
        self.con.close()


def open_landed_index(settings: Settings, consumer: str) -> LandedIndex:
    """The landed index of `consumer` for the settings' backend.

    Local: `<state_dir>/<consumer>-landed.sqlite`. AWS: the `<prefix>landed-index` DynamoDB table, with
    the consumer in each item's key (one table serves every consumer).
    """
    if settings.backend == "aws":
        from cdp.streaming.landed_dynamodb import DynamoDbLandedIndex

        return DynamoDbLandedIndex.from_settings(settings, consumer)
    return SqliteLandedIndex(settings.state_dir / f"{consumer}-landed.sqlite")
