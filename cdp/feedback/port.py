"""The reply-store port: issued reply codes of fraud notices and the customers' first answers.

Locally a SQLite file in the state folder; in AWS a DynamoDB table, since the API answering replies runs in
Lambda, whose disk does not outlive the function. Codes, notice ids, transaction ids and answers only:
no personal data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable


@runtime_checkable
class ReplyStore(Protocol):
    """Where reply codes and answers are kept."""

    def issue(self, reply_code: str, notice_id: str, txn_ids: Sequence[str]) -> None:
        """Record a code for a notice and the transactions it covers (issuing the same code again
        replaces them)."""
        ...

    def extend(self, notice_id: str, txn_ids: Sequence[str]) -> None:
        """Add transactions to every code of a notice (alerts that joined its episode later)."""
        ...

    def transactions(self, reply_code: str) -> list[str] | None:
        """The sorted transaction ids a code covers, or None for a code never issued."""
        ...

    def answer_once(self, reply_code: str, answer: str, known_at: datetime) -> bool:
        """Record the answer of an issued code unless it has one: True when this one was recorded."""
        ...
