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
    revoked_at TEXT,
    expires_at TEXT,
    previous_secret_sha256 TEXT,
    previous_valid_until TEXT
) STRICT
"""
# columns added after the first release: a table created before them gets them on open
_ADDED_COLUMNS = ("expires_at", "previous_secret_sha256", "previous_valid_until")
_COLUMNS = (
    "key_id, secret_sha256, scopes, label, created_at, revoked_at, expires_at, previous_secret_sha256, "
    "previous_valid_until"
)


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _record(row: tuple) -> ApiKeyRecord:
    key_id, digest, scopes, label, created, revoked, expires, previous, previous_until = row
    return ApiKeyRecord(
        key_id=key_id,
        secret_sha256=digest,
        scopes=tuple(json.loads(scopes)),
        label=label,
        created_at=datetime.fromisoformat(created),
        revoked_at=_time(revoked),
        expires_at=_time(expires),
        previous_secret_sha256=previous,
        previous_valid_until=_time(previous_until),
    )


class SqliteApiKeyStore:
    """`ApiKeyStore` in `<path>`; one connection per thread (the API serves from a thread pool)."""

    reads_in_process = True  # `get` is a local point query (WAL: never waits for a writer), no network

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(_SCHEMA)
            present = {row[1] for row in conn.execute("PRAGMA table_info(api_keys)")}
            for column in _ADDED_COLUMNS:
                if column not in present:
                    conn.execute(f"ALTER TABLE api_keys ADD COLUMN {column} TEXT")

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
                    f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.key_id,
                        record.secret_sha256,
                        json.dumps(list(record.scopes)),
                        record.label,
                        record.created_at.isoformat(),
                        _text(record.revoked_at),
                        _text(record.expires_at),
                        record.previous_secret_sha256,
                        _text(record.previous_valid_until),
                    ),
                )
        except sqlite3.IntegrityError:
            raise ApiKeyError("an API key with that id already exists") from None

    def get(self, key_id: str) -> ApiKeyRecord | None:
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None else _record(row)

    def list(self) -> list[ApiKeyRecord]:
        rows = self._conn().execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id").fetchall()
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

    def rotate(
        self, key_id: str, secret_sha256: str, expires_at: datetime | None, previous_valid_until: datetime
    ) -> ApiKeyRecord:
        with self._conn() as conn:
            changed = conn.execute(
                "UPDATE api_keys SET previous_secret_sha256 = secret_sha256, secret_sha256 = ?, "
                "expires_at = ?, previous_valid_until = ? WHERE key_id = ? AND revoked_at IS NULL",
                (secret_sha256, _text(expires_at), previous_valid_until.isoformat(), key_id),
            ).rowcount
        record = self.get(key_id)
        if record is None:
            raise UnknownApiKeyError(f"no API key with id {key_id!r}")
        if not changed:
            raise ApiKeyError(f"API key {key_id!r} is revoked: create a new one")
        return record
