"""Chaining of audit records: canonical form, record MAC (keyed) or hash (legacy), and the chain walk."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cdp.security.audit.port import GENESIS_HASH, KEYED_MAC, LEGACY_HASH, AuditRecord

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


def canonical(fields: Mapping[str, Any], *, keyed: bool = False) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8) of the chained fields of a record; keyed records
    also bind their format (`mac_alg`), so one cannot be relabelled as legacy."""
    doc = {k: fields[k] for k in _HASHED}
    doc["fields"] = list(doc["fields"])
    if keyed:
        doc["mac_alg"] = KEYED_MAC
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(fields: Mapping[str, Any]) -> str:
    """Legacy (unkeyed) chain value: SHA-256 of the canonical record. Anyone can recompute it."""
    return hashlib.sha256(canonical(fields)).hexdigest()


def record_mac(key: bytes, fields: Mapping[str, Any]) -> str:
    """Keyed chain value: HMAC-SHA256 under the audit MAC key of the canonical record."""
    return hmac.new(key, canonical(fields, keyed=True), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainWalk:
    """Outcome of walking the records: the first fault (if any), the head, and the chain value at `mark`."""

    ok: bool
    records: int
    first_broken_seq: int | None
    reason: str | None
    head: str  # chain value of the last good record (GENESIS_HASH before the first)
    legacy: int  # legacy records seen
    marked: str | None  # chain value of the record whose seq is `mark` (GENESIS_HASH for mark 0)


def walk_chain(
    records: Iterable[AuditRecord], mac_key: bytes, *, start_seq: int = 1, prev: str = GENESIS_HASH,
    mark: int | None = None, allow_legacy: bool = True,
) -> ChainWalk:  # fmt: skip
    """Walk records in stored order: seq must count start_seq, start_seq+1…, each prev_hash must be the
    previous chain value and each chain value must match the content (HMAC under `mac_key` for keyed
    records, SHA-256 for legacy ones, which may only come before the first keyed record)."""
    checked = legacy = 0
    seen_keyed = not allow_legacy
    marked = prev if mark == start_seq - 1 else None

    def broken(rec: AuditRecord, reason: str) -> ChainWalk:
        return ChainWalk(False, checked, rec.seq, reason, prev, legacy, marked)

    for expected_seq, rec in enumerate(records, start=start_seq):
        checked += 1
        if rec.seq != expected_seq:
            why = (
                "a record is missing before it" if rec.seq > expected_seq else "duplicate or out-of-order seq"
            )
            return broken(rec, f"expected seq {expected_seq}, found {rec.seq}: {why}")
        if rec.prev_hash != prev:
            return broken(rec, "prev_hash does not match the previous record")
        if rec.mac_alg == KEYED_MAC:
            seen_keyed = True
            if not hmac.compare_digest(record_mac(mac_key, rec.__dict__), rec.hash):
                return broken(rec, "content does not match its MAC (altered, or re-chained without the key)")
        elif rec.mac_alg == LEGACY_HASH and not seen_keyed:
            legacy += 1
            if record_hash(rec.__dict__) != rec.hash:
                return broken(rec, "content does not match its hash (altered)")
        else:
            return broken(rec, f"record format {rec.mac_alg!r} not allowed here (inserted or downgraded)")
        prev = rec.hash
        if rec.seq == mark:
            marked = prev
    return ChainWalk(True, checked, None, None, prev, legacy, marked)
