"""The core-banking OLTP store port: the bank's system of record for customers, cards and transactions.

It is the only place allowed to hold clear PII, with two exceptions for cards (PCI DSS): the CVV is never
stored, in any form, and the PAN is stored only encrypted (`card_number_enc`, written by the core-banking
loader under the customer's data key, with `pan_last4` in clear). Adapters store what they are given and
never hold keys. Adapters: `cdp.oltp.sqlite` (local, default) and
`cdp.oltp.dynamodb` (AWS). Rows are dicts in the clean schemas of `cdp.ibm.schema` (see
`cdp.oltp.records` for the exact fields and the Python types they come back as). A row that fails the
checks raises `cdp.oltp.records.RecordError`, naming the record type, line and field but never a value.
Write calls are atomic in SQLite; in DynamoDB rows before a refused one may already be written, and as
every write is idempotent the caller simply retries the corrected call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from cdp.oltp.erasures import Erasure

Row = Mapping[str, Any]


@dataclass(frozen=True)
class Counts:
    """How many records of each type the store holds."""

    customers: int
    cards: int
    transactions: int


class LegacyStoreError(RuntimeError):
    """The store still holds cards in the old format; the message names the command that migrates it."""


MIGRATE_COMMAND = "cdp migrate-core-banking"


@runtime_checkable
class OltpStore(Protocol):
    """Customers (users file row + `email`), cards (cards file row) and transactions, with their PII."""

    def upsert_customers(self, rows: Iterable[Row]) -> int:
        """Insert or fully replace customers by `user`; returns the number of rows written."""
        ...

    def upsert_cards(self, rows: Iterable[Row]) -> int:
        """Insert or fully replace cards by (`user`, `card_index`); returns the number of rows written."""
        ...

    def put_transactions(self, rows: Iterable[Row]) -> int:
        """Store transactions not seen before (by `transaction_id`); returns how many were new."""
        ...

    def get_customer(self, user: int) -> dict[str, Any] | None:
        """The customer, or None."""
        ...

    def get_card(self, user: int, card_index: int) -> dict[str, Any] | None:
        """The card, or None."""
        ...

    def list_cards(self, user: int) -> list[dict[str, Any]]:
        """The customer's cards by card index."""
        ...

    def iter_customers(self) -> Iterator[dict[str, Any]]:
        """Every customer (order not guaranteed), read a page at a time."""
        ...

    def iter_cards(self) -> Iterator[dict[str, Any]]:
        """Every card (order not guaranteed), read a page at a time."""
        ...

    def transactions_for_card(
        self,
        user: int,
        card: int,
        since: datetime | None = None,
        limit: int | None = None,
        *,
        purpose: str | None = None,
    ) -> list[dict[str, Any]]:
        """The card's transactions at or after `since`, oldest first (ties by id), at most `limit`.

        An erased customer's transactions are under legal hold: none is returned unless `purpose` is
        `cdp.oltp.erasures.LEGAL_HOLD_PURPOSE`.
        """
        ...

    def delete_customer(self, user: int) -> int:
        """Erase the customer and their cards (all their PII); returns the number of records removed.

        Transactions stay: they carry no direct identifier and are kept under the legal hold of the
        erasure tombstone (`record_erasure`, written first) until the retention purge.
        """
        ...

    def record_erasure(self, erasure: Erasure) -> Erasure:
        """Store the tombstone of an erased customer unless one exists; returns the stored one (a second
        erasure of the same user keeps the first one's date and hold)."""
        ...

    def get_erasure(self, user: int) -> Erasure | None:
        """The user's tombstone, or None if the user was never erased."""
        ...

    def iter_erasures(self) -> Iterator[Erasure]:
        """Every tombstone (order not guaranteed)."""
        ...

    def purge_held_transactions(self, user: int, purged_at: datetime) -> int:
        """Delete every transaction of an erased user and mark the tombstone purged; returns how many
        transactions were deleted (0 and no change for a user without a tombstone)."""

    def legacy_cards(self) -> Iterator[dict[str, Any]]:
        """Cards still in the old format (a CVV and/or a clear PAN stored): `user`, `card_index` and the
        clear `card_number` (None if absent), for `migrate_cards`. Nothing once the store is migrated."""
        ...

    def migrate_cards(self, protected: Iterable[Row]) -> int:
        """Bring old-format cards to the current format: every CVV and clear PAN is removed for good, and
        `card_number_enc` / `pan_last4` are set from `protected` (rows of `user`, `card_index`,
        `card_number_enc`, `pan_last4`). Returns the number of cards rewritten; a no-op once migrated."""
        ...

    def counts(self) -> Counts:
        """Number of customers, cards and transactions."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
