"""Audit records as JSON lines for a SIEM (`cdp audit export`): one self-describing object per record.

Each line carries the record as the log holds it (tokens, field names, actor and role names, codes: the
log holds no personal data) plus `schema` and `source`, and its `hash`/`prev_hash`, so the SIEM can follow
the chain. As a second line of defence every line is scanned for what looks like personal data (card
numbers, e-mail addresses): such a record's `details` and `fields` are replaced by a marker and the record
is counted in `redacted` (a bug to fix where the record was written, never a value to forward).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from cdp.compliance.leakscan import LeakScanner
from cdp.security.audit.port import AuditRecord

SCHEMA = "cdp.audit/1"
SOURCE = "cdp"
_RELATIVE = re.compile(r"^(\d+)([mhd])$")
_SCANNER = LeakScanner()


@dataclass(frozen=True)
class ExportReport:
    records: int  # lines written
    redacted: int  # of them, records whose details looked like personal data
    first_seq: int | None
    last_seq: int | None


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2026-03-01`, `2026-03-01T10:00:00` (UTC unless it says otherwise) or `90m` / `24h` / `7d` ago."""
    now = now or datetime.now(UTC)
    relative = _RELATIVE.match(text.strip())
    if relative:
        n, unit = int(relative.group(1)), relative.group(2)
        return now - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: n})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            "--since takes an ISO date or time (2026-03-01, 2026-03-01T10:00) or 90m, 24h, 7d"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def siem_event(record: AuditRecord) -> dict[str, Any]:
    """One record as the SIEM receives it."""
    return {
        "schema": SCHEMA,
        "source": SOURCE,
        "seq": record.seq,
        "ts": record.ts,
        "actor": record.actor,
        "role": record.role,
        "action": record.action,
        "outcome": record.outcome,
        "customer_token": record.customer_token,
        "fields": list(record.fields),
        "details": dict(record.details),
        "prev_hash": record.prev_hash,
        "hash": record.hash,
        "mac_alg": record.mac_alg,
    }


def export_jsonl(records: Iterable[AuditRecord], since: datetime, out: IO[str]) -> ExportReport:
    """Write every record at or after `since` to `out`, one JSON object per line, in sequence order."""
    count = redacted = 0
    first = last = None
    for record in records:
        if datetime.fromisoformat(record.ts) < since:
            continue
        event = siem_event(record)
        line = _line(event)
        finding = next(iter(_SCANNER.scan_text(line, "audit", str(record.seq))), None)
        if finding is not None:
            event["details"] = {"redacted": f"looked like personal data ({finding.kind})"}
            event["fields"] = []
            line = _line(event)
            redacted += 1
        out.write(line + "\n")
        count += 1
        first = record.seq if first is None else first
        last = record.seq
    return ExportReport(count, redacted, first, last)


def _line(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
