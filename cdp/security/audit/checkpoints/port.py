"""The audit-checkpoints port: signed checkpoints of the audit log's head, and the store that keeps them
apart from the log (adapters beside this module: `local`, a file; `s3`, write-once objects).

A checkpoint says "the log held `count` records and the last one's MAC was `head`, at `ts`", signed with
HMAC-SHA256 under the checkpoint key (a key separate from the record MAC key). One is written after every
append, so the log can never silently become shorter than, or differ from, what was last signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from cdp.security.audit.port import AuditIntegrityError

FORMAT_VERSION = 1


class CheckpointUnreadable(AuditIntegrityError):
    """The checkpoint store holds an entry that is not a well-formed checkpoint."""


@dataclass(frozen=True)
class Checkpoint:
    count: int  # records in the log (the last one's seq); 0 for an empty log
    head: str  # chain value (MAC) of record `count`; GENESIS_HASH for an empty log
    ts: str  # ISO-8601 UTC, when it was signed
    sig: str  # hex HMAC-SHA256 under the checkpoint key of the other fields

    def signed_bytes(self) -> bytes:
        doc = {"v": FORMAT_VERSION, "count": self.count, "head": self.head, "ts": self.ts}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def signature_ok(self, key: bytes) -> bool:
        expected = hmac.new(key, self.signed_bytes(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.sig)

    def to_json(self) -> str:
        """One line of JSON (no newline)."""
        doc = {"v": FORMAT_VERSION, "count": self.count, "head": self.head, "ts": self.ts, "sig": self.sig}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Checkpoint:
        """Parse one stored checkpoint; `CheckpointUnreadable` if it is not one."""
        try:
            doc: Any = json.loads(text)
            if not isinstance(doc, dict) or doc.get("v") != FORMAT_VERSION:
                raise ValueError("not a version-1 checkpoint")
            cp = cls(count=doc["count"], head=doc["head"], ts=doc["ts"], sig=doc["sig"])
            if not (isinstance(cp.count, int) and cp.count >= 0):
                raise ValueError("bad count")
            if not all(isinstance(v, str) for v in (cp.head, cp.ts, cp.sig)):
                raise ValueError("bad field type")
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointUnreadable(f"unreadable audit checkpoint ({e})") from None
        return cp


def sign_checkpoint(key: bytes, count: int, head: str) -> Checkpoint:
    """A checkpoint of the head `(count, head)`, signed now under the checkpoint key."""
    ts = datetime.now(UTC).isoformat(timespec="microseconds")
    unsigned = Checkpoint(count, head, ts, "")
    return Checkpoint(count, head, ts, hmac.new(key, unsigned.signed_bytes(), hashlib.sha256).hexdigest())


@runtime_checkable
class AuditCheckpoints(Protocol):
    """Append-only store of signed checkpoints, kept apart from the log (another file; S3)."""

    def append(self, checkpoint: Checkpoint) -> None:
        """Durably add a checkpoint (its count is at least the previous one's)."""
        ...

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint, None if there is none; `CheckpointUnreadable` if it cannot be parsed."""
        ...
