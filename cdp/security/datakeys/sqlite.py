"""Local data-key store: a SQLite file in WAL mode (safe for several processes on one machine)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.security.datakeys.port import StoredKey, decode_context, encode_context
from cdp.security.errors import CustomerErased

if TYPE_CHECKING:
    from cdp.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS data_keys (
    pk          TEXT PRIMARY KEY,
    wrapped     BLOB,            -- NULL once erased
    key_version TEXT,
    created_at  TEXT NOT NULL,
    erased_at   TEXT,            -- set when the key was crypto-shredded
    context     TEXT             -- canonical JSON of the encryption context (NULL: written before)
)
"""

_SELECT_LIVE = "SELECT pk, wrapped, key_version, context FROM data_keys WHERE wrapped IS NOT NULL"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class SqliteDataKeyStore:
    """`DataKeyStore` in one SQLite file (created with its folder if missing)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteDataKeyStore:
        """The platform data-key store under the state folder (`<home>/state/data_keys.sqlite`)."""
        return cls(settings.state_dir / "data_keys.sqlite")

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            _add_context_column(conn)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def put(
        self, customer_token: str, wrapped: bytes, key_version: str, context: Mapping[str, str] | None = None
    ) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._erased(conn, customer_token):
                raise CustomerErased(customer_token)
            conn.execute(
                "INSERT INTO data_keys (pk, wrapped, key_version, created_at, context) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(pk) DO UPDATE SET wrapped = excluded.wrapped, "
                "key_version = excluded.key_version, context = coalesce(excluded.context, context)",
                (customer_token, bytes(wrapped), key_version, _now(), encode_context(context)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def put_if_absent(
        self, customer_token: str, wrapped: bytes, key_version: str, context: Mapping[str, str] | None = None
    ) -> bool:
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO data_keys (pk, wrapped, key_version, created_at, context) "
            "VALUES (?, ?, ?, ?, ?)",
            (customer_token, bytes(wrapped), key_version, _now(), encode_context(context)),
        )
        return cur.rowcount == 1

    def swap(
        self, entry_id: str, expected: bytes, wrapped: bytes, key_version: str, context: Mapping[str, str]
    ) -> bool:
        cur = self._conn().execute(
            "UPDATE data_keys SET wrapped = ?, key_version = ?, context = ? WHERE pk = ? AND wrapped = ?",
            (bytes(wrapped), key_version, encode_context(context), entry_id, bytes(expected)),
        )
        return cur.rowcount == 1

    def get(self, customer_token: str) -> bytes | None:
        row = self._conn().execute("SELECT wrapped FROM data_keys WHERE pk = ?", (customer_token,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def entry(self, entry_id: str) -> StoredKey | None:
        row = self._conn().execute(f"{_SELECT_LIVE} AND pk = ?", (entry_id,)).fetchone()
        return None if row is None else _stored(row)

    def entries(self) -> Iterator[StoredKey]:
        rows = self._conn().execute(f"{_SELECT_LIVE} ORDER BY pk").fetchall()
        yield from (_stored(r) for r in rows)

    def delete(self, customer_token: str) -> bool:
        conn = self._conn()
        cur = conn.execute(
            "UPDATE data_keys SET wrapped = NULL, erased_at = ? WHERE pk = ? AND wrapped IS NOT NULL",
            (_now(), customer_token),
        )
        if cur.rowcount == 1:
            return True
        # never had a key: leave a tombstone anyway so a key is never created for an erased customer
        conn.execute(
            "INSERT OR IGNORE INTO data_keys (pk, wrapped, key_version, created_at, erased_at) "
            "VALUES (?, NULL, NULL, ?, ?)",
            (customer_token, _now(), _now()),
        )
        return False

    def is_erased(self, customer_token: str) -> bool:
        return self._erased(self._conn(), customer_token)

    def tokens(self) -> Iterator[str]:
        rows = (
            self._conn().execute("SELECT pk FROM data_keys WHERE wrapped IS NOT NULL ORDER BY pk").fetchall()
        )
        yield from (r[0] for r in rows)

    @staticmethod
    def _erased(conn: sqlite3.Connection, customer_token: str) -> bool:
        row = conn.execute("SELECT erased_at FROM data_keys WHERE pk = ?", (customer_token,)).fetchone()
        return row is not None and row[0] is not None

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _stored(row: tuple) -> StoredKey:
    return StoredKey(row[0], bytes(row[1]), row[2], decode_context(row[3]))


def _add_context_column(conn: sqlite3.Connection) -> None:
    """Stores created before contexts were kept get the column (NULL for their rows)."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(data_keys)")}
    if "context" in columns:
        return
    try:
        conn.execute("ALTER TABLE data_keys ADD COLUMN context TEXT")
    except sqlite3.OperationalError as e:  # another process added it meanwhile
        if "duplicate column" not in str(e):
            raise
