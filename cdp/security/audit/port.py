"""The audit-log port: records who did what to which customer token, chained by SHA-256.

Each record's `hash` is SHA-256 over the canonical JSON of every other field, `prev_hash` included, so
changing, deleting, inserting or reordering records breaks the chain at that point. Records hold tokens
and field names only, never PII values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    ts: str  # ISO-8601 UTC, microseconds
    actor: str
    role: str
    action: str  # reveal | forget | ...
    customer_token: str
    fields: tuple[str, ...]
    outcome: str  # allowed | denied | failed
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int  # records checked (up to and including the first broken one)
    first_broken_seq: int | None = None
    reason: str | None = None
    head_hash: str = field(default=GENESIS_HASH)  # hash of the last good record


@runtime_checkable
class AuditLog(Protocol):
    """Append-only log of security-relevant actions."""

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
        """Append one record (atomically chained to the previous one) and return it."""
        ...

    def records(self) -> Iterator[AuditRecord]:
        """Every record in sequence order."""
        ...

    def verify(self) -> VerifyResult:
        """Check the whole chain."""
        ...
