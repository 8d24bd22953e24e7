"""Reply codes of fraud notices and the customers' answers, which become fraud labels in the lake.

The notifier issues a code per notice with the transactions it covers (and adds the alerts that join the
episode later). An answer through the API ("me": it was the customer; "not-me": fraud) is recorded once,
first answer wins, and lands as `fraud_feedback` rows (txn id, label, source, `known_at`): a label with the
time it became known, so a training set built as of a date uses only the answers known by then.
No personal data: codes, notice ids, transaction ids and labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import pyarrow as pa

from cdp.feedback.port import ReplyStore
from cdp.lake.tables import LakeTable
from cdp.lake.writer import LakeWriter

if TYPE_CHECKING:
    from cdp.backends import Backends
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


@dataclass(frozen=True, slots=True)
class ReplyResult:
    status: Literal["recorded", "already-answered", "unknown-code"]
    transactions: int = 0


class ReplyBook:
    """Issued reply codes and recorded answers, kept in a `ReplyStore` (SQLite locally, DynamoDB in AWS:
    `Backends.reply_store`), answers landed as labels in the lake."""

    def __init__(self, store: ReplyStore, object_store: ObjectStore | None = None, bucket: str = "") -> None:
        self.store = store
        self.object_store, self.bucket = object_store, bucket

    @classmethod
    def from_settings(cls, settings: Settings, object_store: ObjectStore | None = None) -> ReplyBook:
        """The book over the local SQLite store in the state folder."""
        from cdp.feedback.sqlite import SqliteReplyStore

        return cls(SqliteReplyStore.from_settings(settings), object_store, settings.lake_bucket)

    @classmethod
    def of(cls, backends: Backends) -> ReplyBook:
        """The book over the platform's reply store (the backend's choice) and its lake."""
        return cls(backends.reply_store, backends.object_store, backends.settings.lake_bucket)

    def issue(self, reply_code: str, notice_id: str, txn_ids: list[str]) -> None:
        self.store.issue(reply_code, notice_id, txn_ids)

    def extend(self, notice_id: str, txn_ids: list[str]) -> None:
        """Transactions that joined a notified episode: an answer covers them too."""
        self.store.extend(notice_id, txn_ids)

    def answer(self, reply_code: str, answer: Answer, known_at: datetime | None = None) -> ReplyResult:
        """Record the customer's answer (first one wins) and land its labels in the lake."""
        if not REPLY_CODE.match(reply_code) or answer not in ("me", "not-me"):
            return ReplyResult("unknown-code")
        when = (known_at or _now()).astimezone(UTC).replace(tzinfo=None, microsecond=0)
        txn_ids = self.store.transactions(reply_code)
        if txn_ids is None:
            return ReplyResult("unknown-code")
        if not self.store.answer_once(reply_code, answer, when):
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
