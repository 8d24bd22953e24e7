"""The CLV oracle: a customer's expected and realised net spend over the 12 months from the cut-off."""

from __future__ import annotations

from datetime import date

import numpy as np

from cdp.synth.activity import Activity, expected_net_per_purchase
from cdp.synth.people import UserProfile, day_number


def clv_window(clv_cutoff: date, end: date) -> tuple[int, int]:
    """[first, last) day numbers of the CLV window: 12 months from the cut-off, clipped to the data's end."""
    stop = date(clv_cutoff.year + 1, clv_cutoff.month, clv_cutoff.day)
    return day_number(clv_cutoff), min(day_number(stop), day_number(end) + 1)


def clv_expected(profile: UserProfile, clv_cutoff: date, end: date) -> float:
    """E[genuine net spend in dollars] in the window given the latent rate curve and amount parameters."""
    first, stop = clv_window(clv_cutoff, end)
    days = np.arange(first, stop, dtype=np.int64)
    return float(profile.daily_rate(days).sum() * expected_net_per_purchase(profile))


def clv_realised(activity: Activity, clv_cutoff: date, end: date) -> float:
    """Genuine net spend in dollars in the window (attack rows are not customer value)."""
    first, stop = clv_window(clv_cutoff, end)
    day = activity.ts // 86400
    mask = (day >= first) & (day < stop) & (activity.episode < 0)
    return float(activity.amount_cents[mask].sum()) / 100
