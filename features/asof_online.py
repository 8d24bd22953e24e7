"""The online path of an as-of view: per-key state updated per event, read as of any later moment.

`OnlineAsOfFeatures.update(row)` adds an event to its key's state (events of a key in time order, as the
stream replays them); `features_as_of(key, as_of)` gives the features the offline SQL gives the key as of
`as_of`, for any `as_of` after the key's last event. The state holds the events of the longest period
(older ones are evicted), running totals for whole-history aggregates, and first/last event times.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdp.catalog.port import Catalog
from cdp.online.port import OnlineStore
from features.asof_spec import (
    DAY,
    Aggregate,
    AsOfFeatureView,
    Count,
    DaysSince,
    Distinct,
    Profile,
    Ratio,
    Sum,
    Value,
    Where,
)
from features.columns import COLUMNS, Row, epoch_seconds


@dataclass(frozen=True)
class CustomerProfile:
    """What an as-of view needs from the `customers` table (no personal data)."""

    yearly_income: int | None
    fico_score: int | None
    num_credit_cards: int | None
    gender: str | None
    band_last_year: int | None  # last birth year of the customer's birth-year band

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CustomerProfile:
        band = row.get("birth_year_band")
        return cls(
            row.get("yearly_income"),
            row.get("fico_score"),
            row.get("num_credit_cards"),
            row.get("gender"),
            None if band is None else int(band.split("-")[1]),
        )

    def value(self, attribute: str, as_of: datetime) -> Any:
        if attribute == "age_band_start":
            return None if self.band_last_year is None else as_of.year - self.band_last_year
        return getattr(self, attribute)


def load_customer_profiles(catalog: Catalog) -> dict[str, CustomerProfile]:
    """Profiles of every customer in the lake's `customers` table."""
    rows = catalog.query(
        "SELECT user_token, yearly_income, fico_score, num_credit_cards, gender, birth_year_band "
        "FROM customers"
    ).to_pylist()
    return {r["user_token"]: CustomerProfile.from_row(r) for r in rows}


class _KeyState:
    """One key's events of the longest period, whole-history totals, first/last times."""

    __slots__ = ("events", "ever", "times", "last_t")

    def __init__(self, ever: list[Aggregate], n_times: int) -> None:
        self.events: list[list[Any]] = []  # [epoch_s, *column values], in arrival order
        self.ever: list[Any] = [set() if isinstance(a, Distinct) else 0 for a in ever]  # count/sum/values
        self.times: list[int | None] = [None] * n_times
        self.last_t: int | None = None


Predicate = Callable[[list[Any]], bool]


class OnlineAsOfFeatures:
    """Incremental state of one as-of view, state per key in `store`."""

    def __init__(
        self,
        view: AsOfFeatureView,
        store: OnlineStore,
        profiles: Mapping[str, CustomerProfile] | None = None,
    ) -> None:
        self.view = view
        self.store = store
        self.profiles = profiles or {}
        self.columns = view.columns()
        self._pos = {c: i + 1 for i, c in enumerate(self.columns)}  # index in an event list
        self._readers = [COLUMNS[c].value for c in self.columns]
        self._longest = view.longest_seconds()
        aggs = view.aggregates()
        self._ever = [a for a in aggs if a.period.start_days is None]
        self._ever_index = {a: i for i, a in enumerate(self._ever)}
        self._ever_match = [self._matcher(a.where) for a in self._ever]
        self._times = [f for f in view.features if isinstance(f, DaysSince)]
        self._times_match = [self._matcher(f.where) for f in self._times]
        self._states: dict[str, _KeyState] = {}
        self._dirty: set[str] = set()

    def _matcher(self, where: tuple[Where, ...]) -> Predicate:
        tests = []
        for w in where:
            i = self._pos[w.column]
            if COLUMNS[w.column].kind == "bool":
                tests.append(lambda ev, i=i: ev[i] is True)
            else:
                tests.append(lambda ev, i=i, v=w.value: ev[i] is not None and ev[i] == v)
        return lambda ev: all(t(ev) for t in tests)

    def _new_state(self) -> _KeyState:
        return _KeyState(self._ever, len(self._times))

    # -- state loading and saving -------------------------------------------------------------------
    def _store_key(self, key: str) -> str:
        return f"{self.view.name}#{key}"

    def prepare(self, keys: Iterable[str]) -> None:
        """Load the states of `keys` not yet in memory, in one store call."""
        missing = sorted({k for k in keys if k not in self._states})
        if not missing:
            return
        blobs = self.store.get_many([self._store_key(k) for k in missing])
        for k in missing:
            blob = blobs.get(self._store_key(k))
            self._states[k] = self._decode(blob) if blob is not None else self._new_state()

    def flush(self) -> int:
        """Write every changed state to the store in one call; returns how many."""
        items = {self._store_key(k): self._encode(self._states[k]) for k in sorted(self._dirty)}
        if items:
            self.store.put_many(items)
        self._dirty.clear()
        return len(items)

    def _encode(self, st: _KeyState) -> bytes:
        ever = [sorted(v, key=repr) if isinstance(v, set) else v for v in st.ever]
        doc = {"e": st.events, "a": ever, "t": st.times, "l": st.last_t}
        return json.dumps(doc, separators=(",", ":")).encode()

    def _decode(self, blob: bytes) -> _KeyState:
        doc = json.loads(blob)
        st = self._new_state()
        st.events, st.times, st.last_t = doc["e"], doc["t"], doc["l"]
        st.ever = [
            set(v) if isinstance(a, Distinct) else v for a, v in zip(self._ever, doc["a"], strict=True)
        ]
        return st

    # -- the per-event path -------------------------------------------------------------------------
    def update(self, row: Row) -> None:
        """Add one event to its key's state."""
        key = row[self.view.key]
        st = self._states.get(key)
        if st is None:
            self.prepare([key])
            st = self._states[key]
        self._dirty.add(key)
        t = epoch_seconds(row["ts"])
        ev = [t, *(read(row) for read in self._readers)]
        for i, a in enumerate(self._ever):
            if not self._ever_match[i](ev):
                continue
            if isinstance(a, Count):
                st.ever[i] += 1
            elif isinstance(a, Sum):
                st.ever[i] += ev[self._pos[a.column]]
            else:
                value = ev[self._pos[a.column]]
                if value is not None:
                    st.ever[i].add(value)
        for i, f in enumerate(self._times):
            if self._times_match[i](ev):
                old = st.times[i]
                if old is None or (t > old if f.which == "last" else t < old):
                    st.times[i] = t
        st.last_t = t if st.last_t is None else max(st.last_t, t)
        if self._longest:
            st.events.append(ev)
            lo = st.last_t - self._longest
            if st.events[0][0] < lo:
                st.events = [e for e in st.events if e[0] >= lo]

    # -- reading ------------------------------------------------------------------------------------
    def _aggregate(self, st: _KeyState, agg: Aggregate, as_of_s: int) -> Any:
        if agg.period.start_days is None:
            value = st.ever[self._ever_index[agg]]
            return len(value) if isinstance(agg, Distinct) else value
        start, end = agg.period.bounds()
        lo, hi = as_of_s - start, as_of_s - end
        match = self._matcher(agg.where)
        chosen = [ev for ev in st.events if lo <= ev[0] < hi and match(ev)]
        if isinstance(agg, Count):
            return len(chosen)
        i = self._pos[agg.column]
        if isinstance(agg, Sum):
            return sum(ev[i] for ev in chosen)
        return len({ev[i] for ev in chosen if ev[i] is not None})

    def features_as_of(self, key: str, as_of: datetime) -> dict[str, Any] | None:
        """The key's features as of `as_of` (None when it has no event before); `as_of` must be later than
        every event the state holds."""
        self.prepare([key])
        st = self._states[key]
        if st.last_t is None:
            return None
        as_of_s = epoch_seconds(as_of)
        if as_of_s <= st.last_t:
            raise ValueError(f"{self.view.name}: as_of must be after the key's last event")
        cache: dict[Aggregate, Any] = {}

        def agg(a: Aggregate) -> Any:
            if a not in cache:
                cache[a] = self._aggregate(st, a, as_of_s)
            return cache[a]

        out: dict[str, Any] = {}
        profile = self.profiles.get(key)
        for f in self.view.features:
            if isinstance(f, Value):
                out[f.name] = agg(f.of)
            elif isinstance(f, Ratio):
                d = agg(f.denominator)
                out[f.name] = None if d <= 0 else float(agg(f.numerator)) / d
            elif isinstance(f, DaysSince):
                t = st.times[self._times.index(f)]
                out[f.name] = None if t is None else float(as_of_s - t) / DAY
            elif isinstance(f, Profile):
                out[f.name] = None if profile is None else profile.value(f.name, as_of)
            else:  # pragma: no cover
                raise TypeError(f"unknown feature kind {type(f).__name__}")
        return out
