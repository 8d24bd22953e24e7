"""The notifier's state: which alerts it has handled and every notice, with what an audit needs.

One SQLite file in the state folder. Tokens, hashes, lengths, reason codes and the PII-free composition
(subject and body with placeholders, the de-identified context) only: the leak scan covers this file.
A notice and the alerts it covers are recorded in one transaction, before anything is sent; a notice is
marked sent after the mail port took it (a batch of notices in one transaction, `mark_many`). So a crash
leaves either nothing (the alerts are read again and make the same notice: its id is derived from the card
and first transaction) or a pending notice, sent again with the same id on the next run.
WAL with synchronous=NORMAL: a commit survives a killed process without a sync per commit; a power loss
may undo the last commits, never corrupt the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    txn_id TEXT PRIMARY KEY,
    notice_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notices (
    notice_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_token TEXT NOT NULL,
    card_token TEXT,
    day TEXT NOT NULL,
    first_ts TEXT NOT NULL,
    last_ts TEXT NOT NULL,
    status TEXT NOT NULL,            -- pending | sent | dead | skipped | capped
    reason TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    reply_code TEXT UNIQUE,
    template TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    writer TEXT NOT NULL DEFAULT '',
    context_json TEXT NOT NULL DEFAULT '{}',
    prompt_sha256 TEXT NOT NULL DEFAULT '',
    prompt_chars INTEGER NOT NULL DEFAULT 0,
    output_sha256 TEXT NOT NULL DEFAULT '',
    output_chars INTEGER NOT NULL DEFAULT 0,
    fallback INTEGER NOT NULL DEFAULT 0,
    guardrail_reasons TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    sent_at TEXT,
    transport_ref TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS notices_card ON notices (card_token, last_ts);
CREATE INDEX IF NOT EXISTS notices_user_day ON notices (user_token, day, status);
CREATE INDEX IF NOT EXISTS notices_status ON notices (status);
CREATE TABLE IF NOT EXISTS replies (
    notice_id TEXT PRIMARY KEY,
    answer TEXT NOT NULL,             -- "me" | "not-me"
    known_at TEXT NOT NULL
);
"""
COUNTED = ("pending", "sent", "dead")  # notices that count toward a customer's daily cap


@dataclass(frozen=True, slots=True)
class NoticeRecord:
    """A notice as the ledger holds it."""

    notice_id: str
    kind: str
    user_token: str
    card_token: str | None
    status: str
    reply_code: str | None
    subject: str
    body: str
    attempts: int
    last_ts: str


@dataclass(frozen=True, slots=True)
class Mark:
    """A notice's new status (sent, dead, skipped) with the reason, transport reference and tries."""

    notice_id: str
    status: str
    reason: str = ""
    transport_ref: str = ""
    attempts: int = 0


class Ledger:
    """The notifier's SQLite ledger."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")  # WAL: a process crash loses no commit
        self._depth = 0  # transactions open (a batch and the records inside it)
        self.con.executescript(_SCHEMA)

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; inside another (a `batch`), part of it."""
        if self._depth:
            self._depth += 1
            try:
                yield self.con
            finally:
                self._depth -= 1
            return
        self.con.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.con
        except BaseException:
            self._depth = 0
            self.con.execute("ROLLBACK")
            raise
        self._depth = 0
        self.con.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Records made inside commit together at the end (one write of the file for many notices); a
        crash before then records none of them, and their alerts are read again on the next run."""
        with self.transaction():
            yield

    # -- alerts ---------------------------------------------------------------------------------------
    def seen(self, txn_ids: Iterable[str]) -> set[str]:
        """The ids among `txn_ids` already handled."""
        ids = list(txn_ids)
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0] for r in self.con.execute(f"SELECT txn_id FROM alerts WHERE txn_id IN ({marks})", chunk)
            )
        return found

    def latest_of_card(self, card_token: str) -> tuple[str, str] | None:
        """(notice id, last event time) of the card's newest fraud notice, or None."""
        row = self.con.execute(
            "SELECT notice_id, last_ts FROM notices WHERE card_token = ? AND kind = 'fraud' "
            "ORDER BY last_ts DESC LIMIT 1",
            (card_token,),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def count_for_day(self, user_token: str, day: str, kind: str = "fraud") -> int:
        marks = ",".join("?" * len(COUNTED))
        return self.con.execute(
            "SELECT count(*) FROM notices WHERE user_token = ? AND day = ? AND kind = ? "
            f"AND status IN ({marks})",
            (user_token, day, kind, *COUNTED),
        ).fetchone()[0]

    def offers_since(self, user_token: str, day: str) -> int:
        """Offers recorded for the customer on or after `day` (for the campaigns' frequency cap)."""
        marks = ",".join("?" * len(COUNTED))
        return self.con.execute(
            "SELECT count(*) FROM notices WHERE user_token = ? AND kind = 'offer' AND day >= ? "
            f"AND status IN ({marks})",
            (user_token, day, *COUNTED),
        ).fetchone()[0]

    def exists(self, notice_id: str) -> bool:
        return (
            self.con.execute("SELECT 1 FROM notices WHERE notice_id = ?", (notice_id,)).fetchone() is not None
        )

    # -- notices --------------------------------------------------------------------------------------
    def record(self, row: dict[str, object], txn_ids: Iterable[str]) -> None:
        """A new notice and the alerts it covers, in one transaction."""
        row = {**row, "created_at": _now()}
        names = ",".join(row)
        with self.transaction() as con:
            con.execute(
                f"INSERT INTO notices ({names}) VALUES ({','.join('?' * len(row))})", list(row.values())
            )
            con.executemany(
                "INSERT OR IGNORE INTO alerts (txn_id, notice_id) VALUES (?, ?)",
                [(t, row["notice_id"]) for t in txn_ids],
            )

    def attach(self, notice_id: str, txn_ids: Iterable[str], last_ts: str) -> None:
        """Alerts joining an episode that already has its notice: recorded, nothing sent."""
        with self.transaction() as con:
            con.executemany(
                "INSERT OR IGNORE INTO alerts (txn_id, notice_id) VALUES (?, ?)",
                [(t, notice_id) for t in txn_ids],
            )
            con.execute(
                "UPDATE notices SET last_ts = max(last_ts, ?) WHERE notice_id = ?", (last_ts, notice_id)
            )

    def pending(self) -> list[NoticeRecord]:
        rows = self.con.execute(
            "SELECT notice_id, kind, user_token, card_token, status, reply_code, subject, body, attempts, "
            "last_ts FROM notices WHERE status = 'pending' ORDER BY created_at, notice_id"
        ).fetchall()
        return [NoticeRecord(*r) for r in rows]

    def mark(
        self, notice_id: str, status: str, reason: str = "", transport_ref: str = "", attempts: int = 0
    ) -> None:
        self.mark_many([Mark(notice_id, status, reason, transport_ref, attempts)])

    def mark_many(self, marks: Iterable[Mark]) -> None:
        """`mark` of several notices in one transaction (one commit for a batch of sends)."""
        now = _now()
        rows = [
            (
                m.status,
                m.reason,
                m.transport_ref,
                m.attempts,
                now if m.status == "sent" else None,
                m.notice_id,
            )
            for m in marks
        ]
        if not rows:
            return
        with self.transaction() as con:
            con.executemany(
                "UPDATE notices SET status = ?, reason = ?, transport_ref = ?, attempts = attempts + ?, "
                "sent_at = coalesce(?, sent_at) WHERE notice_id = ?",
                rows,
            )

    def statuses(self) -> dict[str, int]:
        return dict(self.con.execute("SELECT status, count(*) FROM notices GROUP BY status").fetchall())

    def notice_of_reply_code(self, reply_code: str) -> tuple[str, str] | None:
        """(notice id, status) of a fraud notice's reply code, or None."""
        row = self.con.execute(
            "SELECT notice_id, status FROM notices WHERE reply_code = ? AND kind = 'fraud'", (reply_code,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def transactions_of(self, notice_id: str) -> list[str]:
        return [
            r[0]
            for r in self.con.execute(
                "SELECT txn_id FROM alerts WHERE notice_id = ? ORDER BY txn_id", (notice_id,)
            )
        ]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
