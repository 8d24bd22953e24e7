"""Reply codes of fraud notices and the customers' answers, which become fraud labels in the lake.

The notifier issues a code per notice with the transactions it covers (and adds the alerts that join the
episode later). An answer through the API ("me": it was the customer; "not-me": fraud) is recorded once,
first answer wins, and lands as `fraud_feedback` rows (txn id, label, source, `known_at`): a label with the
time it became known, so a training set built as of a date uses only the answers known by then.
No personal data: codes, notice ids, transaction ids and labels.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa

from cdp.lake.tables import LakeTable
from cdp.lake.writer import LakeWriter

if TYPE_CHECKING:
    from cdp.objectstore.port import ObjectStore
    from cdp.settings import Settings

REPLY_CODE = re.compile(r"^[A-HJ-NP-Z]{4}-[A-HJ-NP-Z]{4}$")
Answer = Literal["me", "not-me"]
FEEDBACK_SCHEMA = pa.schema(
    [
        ("txn_id", pa.string()),
        ("is_fraud", pa.bool_()),
        ("source", pa.string()),
        ("known_at", pa.timestamp("s")),
    ]
)
FRAUD_FEEDBACK = LakeTable("fraud_feedback", FEEDBACK_SCHEMA)
SOURCE = "customer-reply"

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


@dataclass(frozen=True, slots=True)
class ReplyResult:
    status: Literal["recorded", "already-answered", "unknown-code"]
    transactions: int = 0


class ReplyBook:
    """Issued reply codes and recorded answers (SQLite in the state folder)."""

    def __init__(self, path: Path, object_store: ObjectStore | None = None, bucket: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.object_store, self.bucket = object_store, bucket
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @classmethod
    def from_settings(cls, settings: Settings, object_store: ObjectStore | None = None) -> ReplyBook:
        return cls(settings.state_dir / "notice_replies.sqlite", object_store, settings.lake_bucket)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def issue(self, reply_code: str, notice_id: str, txn_ids: list[str]) -> None:
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO codes VALUES (?, ?, ?, ?)",
                (reply_code, notice_id, json.dumps(sorted(txn_ids)), _now().isoformat()),
            )

    def extend(self, notice_id: str, txn_ids: list[str]) -> None:
        """Transactions that joined a notified episode: an answer covers them too."""
        with self._connect() as con:
            for code, ids in con.execute(
                "SELECT reply_code, txn_ids FROM codes WHERE notice_id = ?", (notice_id,)
            ):
                merged = sorted(set(json.loads(ids)) | set(txn_ids))
                con.execute("UPDATE codes SET txn_ids = ? WHERE reply_code = ?", (json.dumps(merged), code))

    def answer(self, reply_code: str, answer: Answer, known_at: datetime | None = None) -> ReplyResult:
        """Record the customer's answer (first one wins) and land its labels in the lake."""
        if not REPLY_CODE.match(reply_code) or answer not in ("me", "not-me"):
            return ReplyResult("unknown-code")
        when = (known_at or _now()).astimezone(UTC).replace(tzinfo=None, microsecond=0)
        with self._connect() as con:
            row = con.execute("SELECT txn_ids FROM codes WHERE reply_code = ?", (reply_code,)).fetchone()
            if row is None:
                return ReplyResult("unknown-code")
            txn_ids = json.loads(row[0])
            done = con.execute(
                "INSERT OR IGNORE INTO answers VALUES (?, ?, ?)", (reply_code, answer, when.isoformat())
            ).rowcount
        if not done:
            return ReplyResult("already-answered", len(txn_ids))
        self._land(reply_code, txn_ids, answer == "not-me", when)
        return ReplyResult("recorded", len(txn_ids))

    def _land(self, reply_code: str, txn_ids: list[str], is_fraud: bool, when: datetime) -> None:
        if self.object_store is None:
            return
        table = pa.table(
            {
                "txn_id": txn_ids,
                "is_fraud": [is_fraud] * len(txn_ids),
                "source": [SOURCE] * len(txn_ids),
                "known_at": [when] * len(txn_ids),
            },
            schema=FEEDBACK_SCHEMA,
        )
        LakeWriter(self.object_store, self.bucket).write_chunk(
            FRAUD_FEEDBACK, table, f"reply-{reply_code.lower()}"
        )


def _now() -> datetime:
    return datetime.now(UTC)
