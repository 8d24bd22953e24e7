"""The erasure tombstone of core banking: what is kept about a customer erased under GDPR art. 17.

One record per erased user id, written before anything of the customer is deleted, so that a reload of
the users and cards files or a replay of transactions cannot bring the customer back. It holds no
personal data: the user id (core banking's own key), when, who (actor id and role), the erasure request
id if any, the card indexes under legal hold, and the end of that hold.

The customer's core-banking transactions stay under a legal hold (anti-money-laundering retention,
GDPR art. 17(3)(b)) until `hold_until`: the stores hide them from every read but one made with the
purpose `LEGAL_HOLD_PURPOSE`, and the retention purge deletes them once the hold has ended (`purged_at`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

LEGAL_HOLD_PURPOSE = "legal-hold"
"""The only read purpose that sees an erased customer's held transactions."""


@dataclass(frozen=True)
class Erasure:
    """The tombstone of one erased customer (no personal data)."""

    user: int
    erased_at: datetime  # UTC, seconds
    actor: str
    role: str
    hold_until: date  # the held transactions are purged on or after this day
    request_id: str | None = None
    cards: tuple[int, ...] = ()  # card indexes whose transactions are held
    purged_at: datetime | None = None  # when the held transactions were deleted

    def hold_over(self, today: date) -> bool:
        """Whether the legal hold has ended by `today` (whether or not the purge ran yet)."""
        return today >= self.hold_until


def hold_end(erased_at: datetime, years: int) -> date:
    """The day the legal hold of an erasure at `erased_at` ends: `years` later (29 Feb -> 28 Feb)."""
    day = erased_at.date()
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
