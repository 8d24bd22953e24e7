"""Reply codes and answers in a SQLite file (`<state>/notice_replies.sqlite`), the local adapter.

WAL with synchronous=NORMAL: a commit survives the process being killed; a power loss may undo the last
ones. A notice's code is committed before its e-mail is published, and on Linux the outbox's batch sync
(`syncfs` of the home's filesystem) writes the code to disk before the e-mail gets its name.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.sqlite_connections import ThreadConnections

if TYPE_CHECKING:
    from cdp.settings import Settings

FILE = "notice_replies.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS codes (
    reply_code TEXT PRIMARY KEY,
    notice_id TEXT NOT NULL,
    txn_ids TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS codes_notice ON codes (notice_id);
CREATE TABLE IF NOT EXISTS answers (
    reply_code TEXT PRIMARY KEY,
    answer TEXT NOT NULL,
    known_at TEXT NOT NULL
);
"""


class SqliteReplyStore:
    """`ReplyStore` in one SQLite file (mode 0600), one connection per thread (the API answers replies
    from a pool of threads over one store)."""

    def __init__(self, path: Path) -> None:
        self._connections = ThreadConnections(path)
        self._tuned = threading.local()
        self.path = self._connections.path
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.executescript(_SCHEMA)

    @property
    def con(self) -> sqlite3.Connection:
        """The calling thread's connection."""
        con = self._connections.conn()
        if getattr(self._tuned, "con", None) is not con:
            con.execute("PRAGMA synchronous=NORMAL")  # per connection; WAL is the file's mode
            self._tuned.con = con
        return con

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteReplyStore:
        return cls(settings.state_dir / FILE)

    def close(self) -> None:
        """Close the calling thread's connection."""
        self._connections.close()

    def issue(self, reply_code: str, notice_id: str, txn_ids: Sequence[str]) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO codes VALUES (?, ?, ?, ?)",
            (reply_code, notice_id, json.dumps(sorted(set(txn_ids))), datetime.now(UTC).isoformat()),
        )

    def extend(self, notice_id: str, txn_ids: Sequence[str]) -> None:
        self.con.execute("BEGIN IMMEDIATE")
        try:
            rows = self.con.execute(
                "SELECT reply_code, txn_ids FROM codes WHERE notice_id = ?", (notice_id,)
            ).fetchall()
            for code, ids in rows:
                merged = sorted(set(json.loads(ids)) | set(txn_ids))
                self.con.execute(
                    "UPDATE codes SET txn_ids = ? WHERE reply_code = ?", (json.dumps(merged), code)
                )
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def transactions(self, reply_code: str) -> list[str] | None:
        row = self.con.execute("SELECT txn_ids FROM codes WHERE reply_code = ?", (reply_code,)).fetchone()
        return None if row is None else sorted(json.loads(row[0]))

    def answer_once(self, reply_code: str, answer: str, known_at: datetime) -> bool:
        if self.transactions(reply_code) is None:
            return False
        done = self.con.execute(
            "INSERT OR IGNORE INTO answers VALUES (?, ?, ?)", (reply_code, answer, known_at.isoformat())
        ).rowcount
        return bool(done)
