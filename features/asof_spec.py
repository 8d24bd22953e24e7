"""The declarative language of "as of" views: one row per key and cut-off, from the key's events before it.

Where an event view (`features.spec`) describes every transaction, an as-of view describes a customer at a
moment `as_of`: recency, frequency, spend, mixes, trends. The SQL renderer (`features.asof_render`) and
the online state (`features.asof_online`) both follow the meanings below; the parity test holds them equal.

Semantics shared by both paths:
- A row as of `as_of` sees only the key's events with ts < as_of (point-in-time).
- A `Period` of (start, end) days holds the events with ts in [as_of - start days, as_of - end days):
  an event exactly `start` days before `as_of` is in, one exactly `end` days before is out.
- `Where` conditions select events by a row column (`features.columns`): a flag column must be true, a
  text column must equal the value. Events with a null there are never selected.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86_400


@dataclass(frozen=True)
class Period:
    """Events with ts in [as_of - start_days, as_of - end_days); `start_days=None` means all history."""

    start_days: int | None
    end_days: int = 0

    def bounds(self) -> tuple[int | None, int]:
        """(seconds before as_of where the period starts or None, seconds before as_of where it ends)."""
        return (None if self.start_days is None else self.start_days * DAY, self.end_days * DAY)


EVER = Period(None)


@dataclass(frozen=True)
class Where:
    """Selects events whose `column` is true (flag column) or equals `value` (text column)."""

    column: str
    value: str | None = None


@dataclass(frozen=True)
class Count:
    """Number of selected events in the period."""

    period: Period
    where: tuple[Where, ...] = ()


@dataclass(frozen=True)
class Sum:
    """Sum of an integer column over the selected events in the period (0 when there are none)."""

    period: Period
    column: str
    where: tuple[Where, ...] = ()


@dataclass(frozen=True)
class Distinct:
    """Number of distinct non-null values of a column over the selected events in the period."""

    period: Period
    column: str
    where: tuple[Where, ...] = ()


Aggregate = Count | Sum | Distinct


@dataclass(frozen=True)
class Value:
    """An aggregate as a feature (an integer)."""

    name: str
    of: Aggregate


@dataclass(frozen=True)
class Ratio:
    """numerator / denominator as a float; null when the denominator is <= 0."""

    name: str
    numerator: Aggregate
    denominator: Aggregate


@dataclass(frozen=True)
class DaysSince:
    """Days (fractional) from the last (or first) selected event to `as_of`; null when there is none."""

    name: str
    which: str  # last | first
    where: tuple[Where, ...] = ()


@dataclass(frozen=True)
class Profile:
    """A non-personal attribute from the lake's `customers` table (null when the customer is unknown).
    `age_band_start` is the age at `as_of` of the youngest birth year in the customer's 5-year band."""

    name: str  # yearly_income | fico_score | num_credit_cards | gender | age_band_start


AsOfFeature = Value | Ratio | DaysSince | Profile

PROFILE_ATTRIBUTES = ("yearly_income", "fico_score", "num_credit_cards", "gender", "age_band_start")


@dataclass(frozen=True)
class AsOfFeatureView:
    """Features of each key as of a cut-off, from its events strictly before the cut-off."""

    name: str
    key: str  # user_token | card_token
    features: tuple[AsOfFeature, ...]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def aggregates(self) -> list[Aggregate]:
        """Every distinct aggregate the features read, in first-use order."""
        seen: dict[Aggregate, None] = {}
        for f in self.features:
            if isinstance(f, Value):
                seen.setdefault(f.of)
            elif isinstance(f, Ratio):
                seen.setdefault(f.numerator)
                seen.setdefault(f.denominator)
        return list(seen)

    def columns(self) -> list[str]:
        """Row columns (of `features.columns`) the view reads, in the order of that table."""
        from features.columns import COLUMNS

        used: set[str] = set()
        for a in self.aggregates():
            used |= {w.column for w in a.where}
            if isinstance(a, Sum | Distinct):
                used.add(a.column)
        for f in self.features:
            if isinstance(f, DaysSince):
                used |= {w.column for w in f.where}
        return [c for c in COLUMNS if c in used]

    def longest_seconds(self) -> int:
        """How far back from `as_of` any windowed aggregate reaches (0 when none is windowed)."""
        starts = [a.period.bounds()[0] for a in self.aggregates()]
        return max((s for s in starts if s is not None), default=0)

    def check(self) -> None:
        """Raise ValueError on duplicate names, unknown columns, bad conditions or profile attributes."""
        from features.columns import COLUMNS

        names = self.feature_names
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"view {self.name}: duplicate features {dup}")
        wheres = [w for a in self.aggregates() for w in a.where]
        wheres += [w for f in self.features if isinstance(f, DaysSince) for w in f.where]
        for w in wheres:
            col = COLUMNS.get(w.column)
            if col is None:
                raise ValueError(f"view {self.name}: condition on unknown column {w.column}")
            if (col.kind == "bool") != (w.value is None):
                raise ValueError(f"view {self.name}: condition on {w.column} needs a value iff not a flag")
        for a in self.aggregates():
            if isinstance(a, Sum | Distinct) and a.column not in COLUMNS:
                raise ValueError(f"view {self.name}: unknown column {a.column}")
            if isinstance(a, Sum) and COLUMNS[a.column].kind != "int":
                raise ValueError(f"view {self.name}: sum of non-integer column {a.column}")
        for f in self.features:
            if isinstance(f, Profile) and f.name not in PROFILE_ATTRIBUTES:
                raise ValueError(f"view {self.name}: unknown profile attribute {f.name}")
            if isinstance(f, DaysSince) and f.which not in ("last", "first"):
                raise ValueError(f"view {self.name}: DaysSince {f.name} must be last or first")
