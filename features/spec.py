"""The declarative feature language: a view is a list of features of a few kinds, each kind with one
meaning that the SQL renderer (`features.render`) and the online updater (`features.online`) both follow.

Semantics shared by both paths (the parity and point-in-time tests hold them to it):
- Event order within a key: (ts, event_seq, txn_id). "Prior events" of a row are the key's events
  strictly earlier in that order, so two events of a card in the same second are ordered by their source
  line (`event_seq` is the line plus a keyed per-card offset: it keeps the order within a card and hides
  the source order across cards). A key's events have distinct `event_seq` values (the lake's txn_id is
  built from the card and event_seq), which the SQL relies on to tell them apart by (ts, event_seq) alone.
- A window of W seconds at an event at time t holds the prior events with ts in [t - W, t]: an event
  exactly W earlier is in, one W + 1 s earlier is out.
- A feature sees only prior events, plus the row's own columns where its kind says so (`Current`, the
  value compared in `HistoryZScore`, the key looked up in `FirstSeen`/`PriorShare`/`ChangedFromPrevious`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Window:
    name: str  # "24h"
    seconds: int


@dataclass(frozen=True)
class Current:
    """The event's own value of a row column (`features.columns`)."""

    column: str

    @property
    def name(self) -> str:
        return self.column


@dataclass(frozen=True)
class WindowCount:
    """Number of prior events in the window."""

    window: Window

    @property
    def name(self) -> str:
        return f"txn_count_{self.window.name}"


@dataclass(frozen=True)
class WindowSum:
    """Sum of an integer or flag column over the prior events in the window (0 when there are none)."""

    window: Window
    column: str
    label: str  # what the sum is called: "amount" -> amount_sum_24h, "error" -> error_count_24h
    noun: str = "sum"

    @property
    def name(self) -> str:
        return f"{self.label}_{self.noun}_{self.window.name}"


@dataclass(frozen=True)
class WindowNewCount:
    """Number of prior events in the window that were the key's first event with their value of the column
    (null values never count): e.g. how many merchants new to the card it used in the last 24 h."""

    window: Window
    column: str
    label: str

    @property
    def name(self) -> str:
        return f"new_{self.label}_count_{self.window.name}"

    @property
    def flag(self) -> str:
        """The per-event flag the window sums: this event was the key's first with its value."""
        return first_flag(self.column)


def first_flag(column: str) -> str:
    """Name of the derived per-event flag "first event of the key with this value of `column`"."""
    return f"_first_{column}"


@dataclass(frozen=True)
class WindowMean:
    """Mean of a column over the prior events in the window (null when there are none)."""

    window: Window
    column: str
    label: str

    @property
    def name(self) -> str:
        return f"{self.label}_mean_{self.window.name}"


@dataclass(frozen=True)
class WindowMax:
    """Maximum of an integer column over the prior events in the window (null when there are none)."""

    window: Window
    column: str
    label: str

    @property
    def name(self) -> str:
        return f"{self.label}_max_{self.window.name}"


@dataclass(frozen=True)
class HistoryZScore:
    """(value - mean) / population std of the column over all prior events; null with < 2 prior events or
    zero spread."""

    column: str
    label: str

    @property
    def name(self) -> str:
        return f"{self.label}_zscore"


@dataclass(frozen=True)
class SecondsSincePrevious:
    """Seconds since the previous event of the key (null for the first)."""

    @property
    def name(self) -> str:
        return "seconds_since_previous"


@dataclass(frozen=True)
class FirstSeen:
    """True when no prior event had this row's value of the column (false when the value is null)."""

    column: str
    label: str

    @property
    def name(self) -> str:
        return f"is_new_{self.label}"


@dataclass(frozen=True)
class PriorShare:
    """Share of prior events whose column equals this row's value (null with no prior event or a null
    value): how usual this channel / hour is for the key."""

    column: str
    label: str

    @property
    def name(self) -> str:
        return f"{self.label}_usual_share"


@dataclass(frozen=True)
class ChangedFromPrevious:
    """True when the column differs from the previous event's value (false for the first or a null)."""

    column: str
    label: str

    @property
    def name(self) -> str:
        return f"{self.label}_changed"


@dataclass(frozen=True)
class CardAttribute:
    """An attribute of the card from the lake's `cards` table (null when the card is unknown).
    `card_age_days` is computed at the event's date, so it never leaks the future, and is never below 0
    (a row dated before its card's open month is kept and flagged, `cdp.ibm.card_life`)."""

    attribute: str  # card_age_days | credit_limit | has_chip

    @property
    def name(self) -> str:
        return self.attribute


Feature = (
    Current | WindowCount | WindowSum | WindowNewCount | WindowMean | WindowMax | HistoryZScore
    | SecondsSincePrevious | FirstSeen | PriorShare | ChangedFromPrevious | CardAttribute
)  # fmt: skip

CARD_ATTRIBUTES = ("card_age_days", "credit_limit", "has_chip")


@dataclass(frozen=True)
class EventFeatureView:
    """Features of every event, computed from the prior events of the same key (a card or a user)."""

    name: str
    key: str  # card_token | user_token
    features: tuple[Feature, ...]
    label: str = "is_fraud"
    passthrough: tuple[str, ...] = field(
        default=("txn_id", "event_seq", "card_token", "user_token", "ts", "year", "month")
    )

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def windows(self) -> list[Window]:
        seen: dict[str, Window] = {}
        for f in self.features:
            w = getattr(f, "window", None)
            if w is not None:
                seen.setdefault(w.name, w)
        return sorted(seen.values(), key=lambda w: w.seconds)

    def check(self) -> None:
        """Raise ValueError on duplicate feature names or unknown row columns / card attributes."""
        from features.columns import COLUMNS

        names = self.feature_names
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"view {self.name}: duplicate features {dup}")
        for f in self.features:
            col = getattr(f, "column", None)
            if col is not None and col not in COLUMNS:
                raise ValueError(f"view {self.name}: feature {f.name} uses unknown column {col}")
            if isinstance(f, CardAttribute) and f.attribute not in CARD_ATTRIBUTES:
                raise ValueError(f"view {self.name}: unknown card attribute {f.attribute}")
