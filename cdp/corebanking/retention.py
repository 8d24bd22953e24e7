"""Retention: read an erased customer's held transactions for the legal hold, and purge what has expired.

`purge` (`cdp retention purge [--now DATE]`) deletes the held transactions of every erased customer whose
legal hold has ended (the tombstone stays, marked purged, so the customer still cannot be reloaded) and
the export files older than `export_ttl_days`; it writes one audit record with the counts.
`held_transactions` is the only read of held transactions: for a legal-hold role, audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cdp.backends import Backends
from cdp.corebanking.exportfiles import remove_expired
from cdp.oltp.erasures import LEGAL_HOLD_PURPOSE
from cdp.security.errors import AccessDenied
from cdp.security.vault import Caller

LEGAL_HOLD_ROLES = frozenset({"privacy-officer"})
NO_CUSTOMER = "-"


@dataclass
class PurgeReport:
    holds_ended: int  # erased customers whose held transactions were deleted by this run
    transactions: int  # held transactions deleted
    exports: int  # expired export files removed
    holds_active: int  # erased customers whose transactions are still held


def purge(
    backends: Backends | None = None, now: datetime | None = None, actor: str = "retention"
) -> PurgeReport:
    """Delete the held transactions whose hold has ended by `now` (UTC; default: the clock) and the
    expired export files."""
    b = backends or Backends()
    at = (now or datetime.now(UTC)).astimezone(UTC)
    ended = transactions = active = 0
    for erasure in b.oltp.iter_erasures():
        if erasure.purged_at is not None:
            continue
        if not erasure.hold_over(at.date()):
            active += 1
            continue
        transactions += b.oltp.purge_held_transactions(erasure.user, at.replace(microsecond=0, tzinfo=None))
        ended += 1
    exports = remove_expired(b.settings, at)
    report = PurgeReport(ended, transactions, exports, active)
    b.audit.append(
        actor=actor,
        role="system",
        action="retention-purge",
        customer_token=NO_CUSTOMER,
        fields=[],
        outcome="allowed",
        details={"now": at.isoformat(timespec="seconds"), **report.__dict__},
    )
    return report


def held_transactions(user: int, caller: Caller, backends: Backends | None = None) -> list[dict[str, Any]]:
    """An erased customer's held transactions (for the legal hold only); AccessDenied for other roles."""
    b = backends or Backends()
    audit = {
        "actor": caller.id,
        "role": caller.role,
        "action": "legal-hold-read",
        "customer_token": NO_CUSTOMER,
    }
    if caller.role not in LEGAL_HOLD_ROLES:
        b.audit.append(
            **audit, fields=[], outcome="denied", details={"reason": "role may not read held records"}
        )
        raise AccessDenied(f"role {caller.role!r} may not read records under legal hold")
    erasure = b.oltp.get_erasure(user)
    cards = erasure.cards if erasure is not None else ()
    rows = [t for c in cards for t in b.oltp.transactions_for_card(user, c, purpose=LEGAL_HOLD_PURPOSE)]
    b.audit.append(**audit, fields=[], outcome="allowed", details={"transactions": len(rows)})
    return rows
