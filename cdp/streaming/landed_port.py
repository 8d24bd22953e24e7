"""The landed-index port: where a stream consumer landed each transaction id (see `cdp.streaming.landed`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class LandedEntry:
    """Where one transaction id landed."""

    batch: str
    applied: bool


@runtime_checkable
class LandedIndex(Protocol):
    """The idempotency index of one stream consumer."""

    def lookup(self, txn_ids: Sequence[str]) -> dict[str, LandedEntry]:
        """The landed entries of those of `txn_ids` that are landed."""
        ...

    def landed_elsewhere(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        """The ids among `txn_ids` already landed by a batch other than `batch`."""
        ...

    def record(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        """Claim `txn_ids` for `batch` (not applied); returns the ids another batch had already claimed."""
        ...

    def mark_applied(self, txn_ids: Sequence[str], batch: str) -> None:
        """Mark `batch`'s claims among `txn_ids` as applied."""
        ...

    def count(self) -> int:
        """How many ids are landed."""
        ...

    def close(self) -> None: ...
