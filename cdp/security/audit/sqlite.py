"""Local audit log: an append-only SQLite table (triggers refuse UPDATE and DELETE) chained by SHA-256.

The triggers stop accidents and casual edits; `verify()` catches anyone who bypasses them (e.g. drops the
triggers) and alters, deletes, inserts or reorders records. Deleting the newest records is only detectable
against a head hash kept elsewhere: compare `verify().head_hash` with a published one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdp.security.audit.chain import record_hash, verify_chain
from cdp.security.audit.port import GENESIS_HASH, AuditRecord, VerifyResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    seq            INTEGER NOT NULL,
    ts             TEXT NOT NULL,
    actor          TEXT NOT NULL,
    role           TEXT NOT NULL,
    action         TEXT NOT NULL,
    customer_token TEXT NOT NULL,
    fields         TEXT NOT NULL,   -- JSON list of field names
    outcome        TEXT NOT NULL,
    details        TEXT NOT NULL,   -- JSON object (no PII)
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_seq ON audit_log (seq);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""
_COLUMNS = "seq, ts, actor, role, action, customer_token, fields, outcome, details, prev_hash, hash"
_SCALARS = (str, int, float, bool, type(None))


class SqliteAuditLog:
    """`AuditLog` in one SQLite file; appends from several processes are serialised by SQLite."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    def append(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        customer_token: str,
        fields: Sequence[str],
        outcome: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        details = dict(details or {})
        bad = [k for k, v in details.items() if not isinstance(k, str) or not isinstance(v, _SCALARS)]
        if bad:
            raise TypeError(f"audit details must be flat scalars; offending keys: {bad}")
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")  # one writer at a time: seq and prev_hash stay consistent
        try:
            last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
            doc: dict[str, Any] = {
                "seq": seq,
                "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
                "actor": actor,
                "role": role,
                "action": action,
                "customer_token": customer_token,
                "fields": tuple(sorted(fields)),
                "outcome": outcome,
                "details": details,
                "prev_hash": prev_hash,
            }
            doc["hash"] = record_hash(doc)
            row = {**doc, "fields": json.dumps(list(doc["fields"])), "details": _json(details)}
            conn.execute(
                f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({', '.join('?' * 11)})",
                tuple(row[c.strip()] for c in _COLUMNS.split(",")),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return AuditRecord(**doc)

    def records(self) -> Iterator[AuditRecord]:
        cur = self._conn().execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq, rowid")
        for seq, ts, actor, role, action, token, fields, outcome, details, prev_hash, h in cur:
            yield AuditRecord(
                seq=seq, ts=ts, actor=actor, role=role, action=action, customer_token=token,
                fields=tuple(json.loads(fields)), outcome=outcome, details=json.loads(details),
                prev_hash=prev_hash, hash=h,
            )  # fmt: skip

    def verify(self) -> VerifyResult:
        return verify_chain(self.records())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _json(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def from_settings(settings: Any) -> SqliteAuditLog:
    """The platform audit log under the state folder (`<home>/state/audit.sqlite`)."""
    return SqliteAuditLog(settings.state_dir / "audit.sqlite")
