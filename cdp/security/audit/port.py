"""The audit-log port: records who did what to which customer token, chained by a keyed MAC.

Each record's `hash` is HMAC-SHA256 under the audit key over the canonical JSON of every other field,
`prev_hash` included, so changing, deleting, inserting or reordering records breaks the chain at that
point, and nobody without the key can recompute it. After every append the head (record count + last MAC)
is signed into a checkpoint kept apart from the log, so deleting the newest records, emptying the log or
rolling it back is caught too. Records written before keyed auditing (`mac_alg` "sha256", legacy) carry a
plain SHA-256 and are protected only through the keyed records and checkpoints that follow them.
Records hold tokens and field names only, never PII values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cdp.security.errors import SecurityError

GENESIS_HASH = "0" * 64
KEYED_MAC = "hmac-sha256"  # record format of keyed records
LEGACY_HASH = "sha256"  # record format written before keyed auditing (unkeyed, not tamper-evident alone)


class AuditIntegrityError(SecurityError):
    """The audit log or its checkpoints were altered, so nothing more may be appended to it."""


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
    hash: str  # HMAC-SHA256 (keyed records) or SHA-256 (legacy records) of the rest, prev_hash included
    mac_alg: str = KEYED_MAC


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int  # records checked (up to and including the first broken one)
    first_broken_seq: int | None = None  # None: the fault is not in one record (e.g. the checkpoints)
    reason: str | None = None
    head_hash: str = field(default=GENESIS_HASH)  # hash of the last good record
    legacy_records: int = 0  # records in the unkeyed legacy format (a prefix of the log)
    checkpoint_count: int | None = None  # records covered by the latest signed checkpoint


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

    def append_many(self, entries: Sequence[Mapping[str, Any]]) -> list[AuditRecord]:
        """Append one record per entry (the keyword arguments of `append`), chained in order; an adapter
        may store them in one transaction and sign one checkpoint for the batch."""
        ...

    def records(self) -> Iterator[AuditRecord]:
        """Every record in sequence order."""
        ...

    def verify(self) -> VerifyResult:
        """Check every record's MAC and the chain, then the head against the latest signed checkpoint."""
        ...
