"""The card-life check: a transaction dated before its card's account-open month or after its expiry month.

One rule for the profile, the batch job and the stream producer. Such rows are flagged, not quarantined:
real IBM files may hold them (a card's transactions start only *around* its `Acct Open Date`), and
dropping them would drop real history, frauds included. They are kept, counted, and listed with their
reason beside the quarantine; the fraud features clamp the card's age at 0, so no model sees a negative
age. Only the month counts (the files give open and expiry dates as MM/YYYY). Rows of cards not in the
cards file are never flagged (the reader quarantines them).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BEFORE_OPEN = "dated before its card's account-open month"
AFTER_EXPIRY = "dated after its card's expiry month"
CARD_LIFE_FIELD = "Year/Month"  # the fields a flag is about (no personal data: not the card's dates)

_FIRST_YEAR = 1900
_NEVER = np.iinfo(np.int64).max


def month_index(dates: pa.Array | pa.ChunkedArray, missing: int) -> np.ndarray:
    """Months since January 1900 of each date or timestamp; `missing` where there is none."""
    index = pc.add(pc.multiply(pc.subtract(pc.year(dates), _FIRST_YEAR), 12), pc.subtract(pc.month(dates), 1))
    return pc.fill_null(index, missing).to_numpy(zero_copy_only=False).astype(np.int64)


class CardLives:
    """Each card's life in months, `Acct Open Date` .. `Expires`, looked up by (user, card index).

    Plain arrays: cheap to send to a worker process."""

    def __init__(self, cards: pa.Table) -> None:
        key = self._key(cards.column("user").to_numpy(), cards.column("card_index").to_numpy())
        order = np.argsort(key, kind="stable")
        self.keys = key[order]
        self.opened = month_index(cards.column("acct_open_date"), -1)[order]
        self.expires = month_index(cards.column("expires"), _NEVER)[order]

    @staticmethod
    def _key(user: np.ndarray, card: np.ndarray) -> np.ndarray:
        return (np.asarray(user).astype(np.int64) << 8) | np.asarray(card).astype(np.int64)

    def reasons(self, user: np.ndarray, card: np.ndarray, month: np.ndarray) -> np.ndarray:
        """Per row: 0 inside its card's life (or an unknown card), 1 before the open month, 2 after expiry."""
        out = np.zeros(len(month), dtype=np.int8)
        if not len(self.keys) or not len(month):
            return out
        key = self._key(user, card)
        at = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        known = self.keys[at] == key
        out[known & (month < self.opened[at])] = 1
        out[known & (month > self.expires[at])] = 2
        return out

    def reasons_of(self, rows: pa.Table) -> np.ndarray:
        """`reasons` of a transactions table (columns `user`, `card`, `ts`)."""
        return self.reasons(
            rows.column("user").to_numpy(), rows.column("card").to_numpy(), month_index(rows.column("ts"), 0)
        )

    def outside(self, rows: pa.Table) -> np.ndarray:
        """Per row of a transactions table: whether it falls outside its card's life."""
        return self.reasons_of(rows) > 0


REASON_TEXT = {1: BEFORE_OPEN, 2: AFTER_EXPIRY}


class FlagSink(Protocol):
    """Where flags go: a `Quarantine` or a `QuarantineRecorder` (`cdp.ibm.quarantine`)."""

    def flag(self, file: str, line: int, field: str | None, reason: str, raw: str | None) -> None:
        """Record one flagged (kept) row."""


def flag_outside(rows: pa.Table, lives: CardLives, file: str, sink: FlagSink) -> int:
    """Flag (in `sink`) every row of `rows` (with `line`) outside its card's life; returns how many."""
    reasons = lives.reasons_of(rows)
    flagged = np.flatnonzero(reasons)
    if not len(flagged):
        return 0
    lines = rows.column("line").to_numpy()
    for i in flagged.tolist():
        sink.flag(file, int(lines[i]), CARD_LIFE_FIELD, REASON_TEXT[int(reasons[i])], None)
    return len(flagged)
