"""The sane window of transaction times: events dated too far in the future (or before the platform's
history) are refused by the API (422) and quarantined by the stream handler, never scored into state.

Times are naive, as in the lake (the merchant's local time); `now` is naive UTC, so `max_future` must
cover the largest local-time offset (a day does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

FUTURE = "dated in the future"
TOO_OLD = "dated before the earliest accepted day"


@dataclass(frozen=True)
class EventWindow:
    """Accepted transaction times: from `earliest` to `max_future` after now."""

    max_future: timedelta = timedelta(days=1)
    earliest: date = date(1990, 1, 1)

    def reason(self, ts: datetime, now: datetime) -> str | None:
        """Why `ts` is refused at `now` (naive UTC), or None when it is accepted. Names no value."""
        if ts.tzinfo is not None:
            ts = ts.replace(tzinfo=None)
        if ts > now + self.max_future:
            return f"{FUTURE} (more than {self.max_future.total_seconds():.0f} s after now)"
        if ts.date() < self.earliest:
            return f"{TOO_OLD} ({self.earliest.isoformat()})"
        return None
