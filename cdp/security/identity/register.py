"""The register of issued identities (local mode): one SQLite file, mode 0600.

A token is only as good as its registration: every use looks the identity up here, so a revoked identity
stops working at once. Names are never reused (a revoked name stays taken), so a name in the audit log
always means one identity. The first identity can only be added while the register is empty, in the same
transaction that checks it (`add_first`): two concurrent bootstraps cannot both succeed.
"""

from __future__ import annotations

import json
import sqlite3
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cdp.security.errors import SecurityError
from cdp.security.identity.port import IdentityAdminError
from cdp.sqlite_connections import ThreadConnections

_SCHEMA = """
CREATE TABLE IF NOT EXISTS identities (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    roles       TEXT NOT NULL,   -- JSON list
    issued_at   TEXT NOT NULL,
    expires_at  TEXT,            -- NULL: no expiry
    issued_by   TEXT NOT NULL,
    revoked_at  TEXT,
    revoked_by  TEXT
)
"""


@dataclass(frozen=True)
class Registration:
    """One issued identity as the register holds it (never its token)."""

    id: str
    name: str
    roles: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime | None
    issued_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def public_view(self) -> dict[str, object]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "issued_at": self.issued_at.isoformat(timespec="seconds"),
            "expires_at": self.expires_at.isoformat(timespec="seconds") if self.expires_at else None,
            "issued_by": self.issued_by,
            "revoked_at": self.revoked_at.isoformat(timespec="seconds") if self.revoked_at else None,
            "revoked_by": self.revoked_by,
        }


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _row(row: tuple) -> Registration:
    return Registration(
        id=row[0], name=row[1], roles=tuple(json.loads(row[2])), issued_at=datetime.fromisoformat(row[3]),
        expires_at=_time(row[4]), issued_by=row[5], revoked_at=_time(row[6]), revoked_by=row[7],
    )  # fmt: skip


_COLUMNS = "id, name, roles, issued_at, expires_at, issued_by, revoked_at, revoked_by"


class SqliteIdentityRegister:
    """Issued identities in one SQLite file, created 0600; refuses a file other users may read."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._connections = ThreadConnections(self.path)  # creates the file 0600 if it is new
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            raise SecurityError(f"identity register {self.path} is accessible to other users: chmod 600 it")
        self._conn().execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._connections.conn()

    def _insert(self, conn: sqlite3.Connection, r: Registration) -> None:
        try:
            conn.execute(
                f"INSERT INTO identities ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                (r.id, r.name, json.dumps(list(r.roles)), r.issued_at.isoformat(),
                 r.expires_at.isoformat() if r.expires_at else None, r.issued_by),
            )  # fmt: skip
        except sqlite3.IntegrityError:
            raise IdentityAdminError(
                f"identity name {r.name!r} is already taken (names are never reused)"
            ) from None

    def is_empty(self) -> bool:
        """True while no identity was ever issued (revoked ones count: bootstrap happens once)."""
        return self._conn().execute("SELECT count(*) FROM identities").fetchone()[0] == 0

    def add_first(self, registration: Registration) -> None:
        """Add the first identity; `IdentityAdminError` if any identity exists already."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT count(*) FROM identities").fetchone()[0]:
                raise IdentityAdminError("identities exist already: only an admin identity may issue more")
            self._insert(conn, registration)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def add(self, registration: Registration) -> None:
        self._insert(self._conn(), registration)

    def get(self, identity_id: str) -> Registration | None:
        sql = f"SELECT {_COLUMNS} FROM identities WHERE id = ?"
        row = self._conn().execute(sql, (identity_id,)).fetchone()
        return None if row is None else _row(row)

    def by_name(self, name: str) -> Registration | None:
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM identities WHERE name = ?", (name,)).fetchone()
        return None if row is None else _row(row)

    def list(self) -> list[Registration]:
        rows = self._conn().execute(f"SELECT {_COLUMNS} FROM identities ORDER BY rowid").fetchall()
        return [_row(r) for r in rows]

    def revoke(self, name: str, by: str, at: datetime | None = None) -> bool:
        """Revoke `name`; True if it was live (False: already revoked)."""
        cur = self._conn().execute(
            "UPDATE identities SET revoked_at = ?, revoked_by = ? WHERE name = ? AND revoked_at IS NULL",
            ((at or datetime.now(UTC)).isoformat(), by, name),
        )
        return cur.rowcount == 1
