"""Hash chaining of audit records: canonical form, record hash and chain verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cdp.security.audit.port import GENESIS_HASH, AuditRecord, VerifyResult

_HASHED = (
    "seq",
    "ts",
    "actor",
    "role",
    "action",
    "customer_token",
    "fields",
    "outcome",
    "details",
    "prev_hash",
)


def canonical(fields: Mapping[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8) of the hashed fields of a record."""
    doc = {k: fields[k] for k in _HASHED}
    doc["fields"] = list(doc["fields"])
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


def verify_chain(records: Iterable[AuditRecord]) -> VerifyResult:
    """Walk records in stored order: seq must count 1, 2, 3…, each prev_hash must be the previous hash,
    and each hash must match its content. Reports the first record where any of this fails."""
    prev = GENESIS_HASH
    checked = 0
    for expected_seq, rec in enumerate(records, start=1):
        checked += 1
        if rec.seq != expected_seq:
            why = (
                "a record is missing before it" if rec.seq > expected_seq else "duplicate or out-of-order seq"
            )
            return VerifyResult(
                False, checked, rec.seq, f"expected seq {expected_seq}, found {rec.seq}: {why}", prev
            )
        if rec.prev_hash != prev:
            return VerifyResult(False, checked, rec.seq, "prev_hash does not match the previous record", prev)
        if record_hash(rec.__dict__) != rec.hash:
            return VerifyResult(False, checked, rec.seq, "content does not match its hash (altered)", prev)
        prev = rec.hash
    return VerifyResult(True, checked, None, None, prev)
