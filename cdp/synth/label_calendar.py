"""Which calendar months have fraud labels. Like the real data, some months have volume but no labels."""

from __future__ import annotations

from datetime import date

import numpy as np

from cdp.synth.streams import Stream, global_rng

RANDOM_UNLABELLED_MONTHS = 8
TRAILING_UNLABELLED = ((2019, 11), (2019, 12), (2020, 1), (2020, 2))


def month_key(year: int, month: int) -> int:
    """Months since year 0 (year * 12 + month - 1)."""
    return year * 12 + month - 1


def unlabelled_months(seed: int, start: date, end: date) -> list[tuple[int, int]]:
    """(year, month) pairs whose fraud labels are missing: a few random months + 2019-11..2020-02,
    all clipped to [start, end]. Sorted."""
    first, last = month_key(start.year, start.month), month_key(end.year, end.month)
    trailing = {month_key(y, m) for y, m in TRAILING_UNLABELLED if first <= month_key(y, m) <= last}
    candidates = [k for k in range(first, last + 1) if k not in trailing and k < month_key(2019, 11)]
    rng = global_rng(seed, Stream.CALENDAR)
    picked = rng.choice(candidates, size=min(RANDOM_UNLABELLED_MONTHS, len(candidates)), replace=False)
    keys = sorted(trailing | {int(k) for k in picked})
    return [(k // 12, k % 12 + 1) for k in keys]


def label_recorded(ts: np.ndarray, unlabelled: list[tuple[int, int]]) -> np.ndarray:
    """True where the row's calendar month has labels (ts: int64 seconds since 1970)."""
    months = ts.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    missing = np.array([(y - 1970) * 12 + m - 1 for y, m in unlabelled], dtype=np.int64)
    return ~np.isin(months, missing)
