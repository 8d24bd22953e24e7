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
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdp.security.audit.chain import record_mac, walk_chain
from cdp.security.audit.checkpoints.local import LocalCheckpointFile
from cdp.security.audit.checkpoints.port import AuditCheckpoints, sign_checkpoint
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.port import GENESIS_HASH, KEYED_MAC, AuditIntegrityError, AuditRecord, VerifyResult
from cdp.security.audit.verdict import judge
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
_SCALARS = (str, int, float, bool, type(None))


def checkpoint_path(log_path: Path) -> Path:
    """Default local checkpoint file beside a log: `audit.sqlite` -> `audit-checkpoints.jsonl`."""
    return log_path.with_name(f"{log_path.stem}-checkpoints.jsonl")


class SqliteAuditLog:
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
        self.checkpoints = (
            checkpoints if checkpoints is not None else LocalCheckpointFile(checkpoint_path(self.path))
        )
        self._keys_or_loader = keys
        self._loaded: AuditKeys | None = None
        self._load_lock = threading.Lock()
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._connections = ThreadConnections(self.path)
        self._covered: tuple[int, str] | None = None  # a head this object knows is signed
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        _add_format_column(conn)
        if isinstance(keys, AuditKeys):
            self._keys  # noqa: B018 - load now: seals a log whose keys were just made

    @property
    def _keys(self) -> AuditKeys:
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    k = self._keys_or_loader
                    loaded = k if isinstance(k, AuditKeys) else k()
                    if loaded.created:
                        self._seal(loaded)
                    self._loaded = loaded
        return self._loaded

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

    def _sign(self, count: int, head: str) -> None:
        self.checkpoints.append(sign_checkpoint(self._keys.checkpoint_key, count, head))
        self._covered = (count, head)

    def _seal(self, keys: AuditKeys) -> None:
        """First checkpoint, by the creator of the checkpoint key: signs the current head (an empty log, or
        records written before keyed auditing) if the chain is intact and no checkpoint exists yet."""
        with self._exclusive():
            try:
                if self.checkpoints.latest() is not None:
                    return
            except AuditIntegrityError:
                return  # verify() reports it; appends refuse
            walk = walk_chain(self._rows(self._conn()), keys.mac_key)
            if walk.ok:
                self.checkpoints.append(sign_checkpoint(keys.checkpoint_key, walk.records, walk.head))

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
        keys = self._keys  # loaded (and a new log sealed) before taking the lock
        with self._exclusive():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")  # also against writers that do not take the lock file
            try:
                last = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
                head_seq, head = (last[0], last[1]) if last else (0, GENESIS_HASH)
                if self._covered != (head_seq, head):
                    self._check_head(conn, head_seq, head)
                doc: dict[str, Any] = {
                    "seq": head_seq + 1,
                    "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
                    "actor": actor,
                    "role": role,
                    "action": action,
                    "customer_token": customer_token,
                    "fields": tuple(sorted(fields)),
                    "outcome": outcome,
                    "details": details,
                    "prev_hash": head,
                }
                doc["hash"] = record_mac(keys.mac_key, doc)
                doc["mac_alg"] = KEYED_MAC
                row = {**doc, "fields": json.dumps(list(doc["fields"])), "details": _json(details)}
                conn.execute(
                    f"INSERT INTO audit_log ({_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                    tuple(row[c.strip()] for c in _COLUMNS.split(",")),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._sign(doc["seq"], doc["hash"])  # after the commit, still under the lock
        return AuditRecord(**doc)

    def _check_head(self, conn: sqlite3.Connection, head_seq: int, head: str) -> None:
        """Before appending to a head this object did not sign: the latest checkpoint must be genuine and
        cover the log, except for records beyond it whose MACs chain from it (a writer stopped before
        signing them); anything else means tampering, and nothing is appended."""
        cp = self.checkpoints.latest()
        if cp is None:
            raise AuditIntegrityError("the audit log has no signed checkpoint (store missing or emptied)")
        if not cp.signature_ok(self._keys.checkpoint_key):
            raise AuditIntegrityError(f"the latest audit checkpoint (count {cp.count}) has a bad signature")
        if cp.count > head_seq:
            raise AuditIntegrityError(
                f"the audit log ends at seq {head_seq} but a signed checkpoint covers {cp.count} records"
            )
        if cp.count == head_seq and cp.head != head:
            raise AuditIntegrityError(f"audit record {head_seq} does not match the signed checkpoint")
        if cp.count < head_seq:
            walk = walk_chain(
                self._rows(conn, after=cp.count), self._keys.mac_key,
                start_seq=cp.count + 1, prev=cp.head, allow_legacy=False,
            )  # fmt: skip
            if not walk.ok or walk.head != head:
                raise AuditIntegrityError(
                    f"audit record {walk.first_broken_seq or head_seq} after the last signed checkpoint "
                    f"fails verification: {walk.reason or 'head mismatch'}"
                )
        self._covered = (head_seq, head)

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
        problem: str | None = None
        cp = None
        with self._exclusive():
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM audit_log").fetchone()  # the snapshot starts here
            try:
                cp = self.checkpoints.latest()
            except AuditIntegrityError as e:
                problem = str(e)
        try:
            walk = walk_chain(self._rows(conn, after=-(2**62)), keys.mac_key, mark=cp.count if cp else None)
        finally:
            conn.execute("COMMIT")
        return judge(walk, cp, problem, keys.checkpoint_key)

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


def _json(details: Mapping[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
