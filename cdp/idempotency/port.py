"""The idempotency-index port: where a stream consumer claimed each transaction id.

The index is what makes a consumer exactly-once by `txn_id`:
- `record(ids, batch)` claims the ids for `batch` (written after the batch's files, before its checkpoint).
  A claim is exclusive: an id already claimed by another batch is not taken over, and `record` returns it;
  claiming again for the same batch (a re-delivered batch rewriting its own files) is a no-op.
- `mark_applied(ids, batch)` records that the batch's side effects outside the lake (the cards' online
  state) are done. Ids claimed but not applied are those of a batch that crashed in between: the handler
  applies them on re-delivery instead of scoring them again.

Adapters: `cdp.idempotency.sqlite.SqliteIdempotencyIndex` (a file in the state folder, local) and
`cdp.idempotency.dynamodb.DynamoDbIdempotencyIndex` (Lambda has no shared disk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Claim:
    """Which batch claimed one transaction id, and whether that batch's effects are applied."""

    batch: str
    applied: bool


@runtime_checkable
class IdempotencyIndex(Protocol):
    """The idempotency index of one stream consumer."""

    def lookup(self, txn_ids: Sequence[str]) -> dict[str, Claim]:
        """The claims of those of `txn_ids` that are claimed."""
        ...

    def claimed_elsewhere(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        """The ids among `txn_ids` already claimed by a batch other than `batch`."""
        ...

    def record(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        """Claim `txn_ids` for `batch` (not applied); returns the ids another batch had already claimed."""
        ...

    def mark_applied(self, txn_ids: Sequence[str], batch: str) -> None:
        """Mark `batch`'s claims among `txn_ids` as applied."""
        ...

    def count(self) -> int:
        """How many ids are claimed."""
        ...

    def close(self) -> None: ...
