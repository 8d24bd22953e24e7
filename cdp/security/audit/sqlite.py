"""Local audit log: an append-only SQLite table (triggers refuse UPDATE and DELETE) chained by HMAC-SHA256,
with the head signed into a checkpoint store kept apart from the log after every append.

The triggers stop accidents and casual edits; `verify()` catches anyone who bypasses them (e.g. drops the
triggers): altered, deleted, inserted or reordered records fail their MAC or the chain, re-chaining needs
the audit key, and deleting the newest records, emptying or rolling back the file disagrees with the latest
signed checkpoint.

Appends from several processes are serialised by a lock file (`<log>.lock`, flock) that covers both the
record's commit and the checkpoint write, so checkpoints are written in order. The checkpoint is written
after the commit: a crash in between leaves one record beyond the checkpoint (reported by `verify()`),
never a checkpoint ahead of the log (which would be indistinguishable from a deleted record). The next
append checks such records' MACs before signing a head that covers them, and refuses to append at all to a
log that disagrees with its checkpoint.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cdp.security.audit.chain import walk_chain
from cdp.security.audit.chained import ChainedAuditLog, checked_details
from cdp.security.audit.checkpoints.local import LocalCheckpointFile
from cdp.security.audit.checkpoints.port import AuditCheckpoints
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.port import GENESIS_HASH, AuditRecord, VerifyResult
from cdp.sqlite_connections import ThreadConnections

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
    hash           TEXT NOT NULL,   -- HMAC-SHA256 (mac_alg 'hmac-sha256') or SHA-256 (legacy 'sha256')
    mac_alg        TEXT NOT NULL DEFAULT 'sha256'
);
CREATE INDEX IF NOT EXISTS audit_log_seq ON audit_log (seq);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""
_COLUMNS = "seq, ts, actor, role, action, customer_token, fields, outcome, details, prev_hash, hash, mac_alg"


def checkpoint_path(log_path: Path) -> Path:
    """Default local checkpoint file beside a log: `audit.sqlite` -> `audit-checkpoints.jsonl`."""
    return log_path.with_name(f"{log_path.stem}-checkpoints.jsonl")


class SqliteAuditLog(ChainedAuditLog):
    """`AuditLog` in one SQLite file, MAC'd with `keys.mac_key`, checkpoints signed with
    `keys.checkpoint_key` into `checkpoints` (default: the local file beside the log).

    `keys` may be a loader, called on first append or verify (so building the log reaches no key service).
    """

    def __init__(
        self,
        path: Path | str,
        keys: AuditKeys | Callable[[], AuditKeys],
        checkpoints: AuditCheckpoints | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(
            keys, checkpoints if checkpoints is not None else LocalCheckpointFile(checkpoint_path(self.path))
        )
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._connections = ThreadConnections(self.path)
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        _add_format_column(conn)
        if isinstance(keys, AuditKeys):
            self._keys  # noqa: B018 - load now: seals a log whose keys were just made

    def _conn(self) -> sqlite3.Connection:
        return self._connections.conn()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The append critical section across processes (and threads: each call opens its own fd)."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _seal(self, keys: AuditKeys) -> None:
        with self._exclusive():
            self._seal_unsigned(keys, self._rows(self._conn()))

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
        entry = {
            "actor": actor, "role": role, "action": action, "customer_token": customer_token,
            "fields": fields, "outcome": outcome, "details": details,
        }  # fmt: skip
        return self.append_many([entry])[0]

    def append_many(self, entries: Sequence[Mapping[str, Any]]) -> list[AuditRecord]:
        """The records of `entries`, chained in order, stored in one transaction (one sync of the log) and
        covered by one signed checkpoint: a crash before the commit stores none of them, one after it
        leaves them beyond the checkpoint (reported by `verify()`, checked by the next append)."""
        contents = [_content(**entry) for entry in entries]
        if not contents:
            return []
        self._keys  # noqa: B018 - loaded (and a new log sealed) before taking the lock
        with self._exclusive():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")  # also against writers that do not take the lock file
            try:
                last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
                head_seq, head = (last[0], last[1]) if last else (0, GENESIS_HASH)
                self._check_head(head_seq, head, lambda after: self._rows(conn, after=after))
                records: list[AuditRecord] = []
                for content in contents:
                    record = self._next_record(head_seq, head, **content)
                    records.append(record)
                    head_seq, head = record.seq, record.hash
                conn.executemany(
                    f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                    [_row(r) for r in records],
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._sign(records[-1])  # after the commit, still under the lock
        return records

    def _rows(self, conn: sqlite3.Connection, after: int = 0) -> Iterator[AuditRecord]:
        cur = conn.execute(f"SELECT {_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq, rowid", (after,))
        for seq, ts, actor, role, action, token, fields, outcome, details, prev_hash, h, mac_alg in cur:
            yield AuditRecord(
                seq=seq, ts=ts, actor=actor, role=role, action=action, customer_token=token,
                fields=tuple(json.loads(fields)), outcome=outcome, details=json.loads(details),
                prev_hash=prev_hash, hash=h, mac_alg=mac_alg,
            )  # fmt: skip

    def records(self) -> Iterator[AuditRecord]:
        return self._rows(self._conn(), after=-(2**62))

    def verify(self) -> VerifyResult:
        """Every record's MAC and the chain, then the head against the latest signed checkpoint (read
        together under the append lock, so a concurrent append cannot make them disagree)."""
        keys = self._keys  # loaded (and a new log sealed) before taking the lock
        conn = self._conn()
        with self._exclusive():
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM audit_log").fetchone()  # the snapshot starts here
            cp, problem = self._latest_checkpoint()
        try:
            walk = walk_chain(self._rows(conn, after=-(2**62)), keys.mac_key, mark=cp.count if cp else None)
        finally:
            conn.execute("COMMIT")
        return self._verdict(walk, cp, problem)

    def close(self) -> None:
        self._connections.close()


def _add_format_column(conn: sqlite3.Connection) -> None:
    """Logs created before keyed auditing lack `mac_alg`: their records are legacy ('sha256')."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(audit_log)")}
    if "mac_alg" not in columns:
        try:
            conn.execute("ALTER TABLE audit_log ADD COLUMN mac_alg TEXT NOT NULL DEFAULT 'sha256'")
        except sqlite3.OperationalError as e:
            if "duplicate column" not in str(e):  # another process added it first
                raise


def _content(
    *,
    actor: str,
    role: str,
    action: str,
    customer_token: str,
    fields: Sequence[str],
    outcome: str,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A record's content as `_next_record` takes it (details checked flat)."""
    return {
        "actor": actor, "role": role, "action": action, "customer_token": customer_token,
        "fields": fields, "outcome": outcome, "details": checked_details(details),
    }  # fmt: skip


def _row(record: AuditRecord) -> tuple[Any, ...]:
    """The stored columns of `record`, in `_COLUMNS` order."""
    row = {**record.__dict__, "fields": json.dumps(list(record.fields)), "details": _json(record.details)}
    return tuple(row[c.strip()] for c in _COLUMNS.split(","))


def _json(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
