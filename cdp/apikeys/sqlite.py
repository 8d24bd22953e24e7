"""Local adapter of the API-key store: one SQLite table (WAL) under the state folder."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from cdp.apikeys.port import ApiKeyError, ApiKeyRecord, UnknownApiKeyError
from cdp.settings import Settings

DB_FILE = "apikeys.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
) STRICT
"""


def _record(row: tuple) -> ApiKeyRecord:
    key_id, digest, scopes, label, created, revoked = row
    return ApiKeyRecord(
        key_id=key_id,
        secret_sha256=digest,
        scopes=tuple(json.loads(scopes)),
        label=label,
        created_at=datetime.fromisoformat(created),
        revoked_at=None if revoked is None else datetime.fromisoformat(revoked),
    )


class SqliteApiKeyStore:
    """`ApiKeyStore` in `<path>`; one connection per thread (the API serves from a thread pool)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(_SCHEMA)

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteApiKeyStore:
        return cls(settings.state_dir / DB_FILE)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10)
            self._local.conn = conn
        return conn

    def add(self, record: ApiKeyRecord) -> None:
        try:
            with self._conn() as conn:
                conn.execute(
                    "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.key_id,
                        record.secret_sha256,
                        json.dumps(list(record.scopes)),
                        record.label,
                        record.created_at.isoformat(),
                        None if record.revoked_at is None else record.revoked_at.isoformat(),
                    ),
                )
        except sqlite3.IntegrityError:
            raise ApiKeyError("an API key with that id already exists") from None

    def get(self, key_id: str) -> ApiKeyRecord | None:
        row = self._conn().execute("SELECT * FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None else _record(row)

    def list(self) -> list[ApiKeyRecord]:
        rows = self._conn().execute("SELECT * FROM api_keys ORDER BY created_at, key_id").fetchall()
        return [_record(r) for r in rows]

    def revoke(self, key_id: str, when: datetime) -> ApiKeyRecord:
        with self._conn() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?",
                (when.isoformat(), key_id),
            )
        record = self.get(key_id)
        if record is None:
            raise UnknownApiKeyError(f"no API key with id {key_id!r}")
        return record
