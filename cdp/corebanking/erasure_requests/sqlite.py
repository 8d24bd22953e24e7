"""Erasure requests in one SQLite file under the state folder (mode 0600), the local adapter."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.corebanking.erasure_requests.port import PENDING, ErasureRequest
from cdp.sqlite_connections import ThreadConnections

if TYPE_CHECKING:
    from cdp.settings import Settings

DB_FILE = "erasure_requests.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS erasure_requests (
    id TEXT PRIMARY KEY, user INTEGER NOT NULL, customer_token TEXT NOT NULL, requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL, status TEXT NOT NULL, confirmed_by TEXT, confirmed_at TEXT
)
"""
_COLUMNS = "id, user, customer_token, requested_by, requested_at, status, confirmed_by, confirmed_at"


class SqliteErasureRequests:
    """`ErasureRequests` in one SQLite file created with mode 0600."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteErasureRequests:
        """The requests file `<state_dir>/erasure_requests.sqlite`."""
        return cls(settings.state_dir / DB_FILE)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._connections = ThreadConnections(self.path)
        self._conn().execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._connections.conn()

    def add(self, request: ErasureRequest) -> None:
        self._conn().execute(
            f"INSERT INTO erasure_requests ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
            (request.id, request.user, request.customer_token, request.requested_by,
             request.requested_at.isoformat(), request.status),
        )  # fmt: skip

    def get(self, request_id: str) -> ErasureRequest | None:
        row = (
            self._conn()
            .execute(f"SELECT {_COLUMNS} FROM erasure_requests WHERE id = ?", (request_id,))
            .fetchone()
        )
        if row is None:
            return None
        return ErasureRequest(
            row[0], int(row[1]), row[2], row[3], datetime.fromisoformat(row[4]), row[5], row[6],
            datetime.fromisoformat(row[7]) if row[7] else None,
        )  # fmt: skip

    def move(
        self, request_id: str, from_status: str, to_status: str, by: str | None, at: datetime | None
    ) -> bool:
        if by is not None or to_status == PENDING:  # a confirmer is set, or cleared on the way back
            sql = "UPDATE erasure_requests SET status = ?, confirmed_by = ?, confirmed_at = ? "
            args: tuple = (to_status, by, at.isoformat() if at and by else None)
        else:
            sql, args = "UPDATE erasure_requests SET status = ? ", (to_status,)
        cur = self._conn().execute(sql + "WHERE id = ? AND status = ?", (*args, request_id, from_status))
        return cur.rowcount == 1
