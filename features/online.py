"""The online path: a view's features maintained per event, equal to what the offline SQL gives the row.

`OnlineFeatures.update(row)` returns the event's features from the key's state (built from the prior
events only), then adds the event to the state. Events of one key must arrive in the view's event order
(ts, event_seq, txn_id); the stream replays in time order, partitioned by card. State lives in memory;
`prepare(keys)` loads a batch's states from the online store in one call, `flush()` writes the changed
ones back in one call, so no event does I/O.

A state dropped from memory (`forget`) while equal to its stored blob is parked with that blob: the next
`prepare` reuses it instead of decoding when the store still holds the same blob (a consumer that loads,
updates, writes and forgets the same cards batch after batch decodes each state once). The parked set is
bounded (`parked_limit`, oldest dropped first).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from cdp.catalog.port import Catalog
from cdp.online.port import OnlineStore
from features.columns import COLUMNS, Row, epoch_seconds
from features.online_compile import compile_update
from features.spec import (
    ChangedFromPrevious,
    EventFeatureView,
    FirstSeen,
    HistoryZScore,
    PriorShare,
    WindowMax,
    WindowMean,
    WindowNewCount,
    WindowSum,
)

_EPOCH_DAY = date(1970, 1, 1).toordinal()
PARKED_LIMIT = 20_000  # forgotten states kept for reuse per `OnlineFeatures`


@dataclass(frozen=True)
class CardProfile:
    """What the view needs from the `cards` table."""

    open_day: int | None  # days since 1970-01-01 of acct_open_date
    credit_limit: int | None
    has_chip: bool | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CardProfile:
        opened = row.get("acct_open_date")
        return cls(
            None if opened is None else opened.toordinal() - _EPOCH_DAY,
            row.get("credit_limit"),
            row.get("has_chip"),
        )


class _State:
    """One key's state: the events inside the longest window, plus running history aggregates."""

    __slots__ = ("times", "vals", "starts", "sums", "maxq", "hist", "prev", "seen", "share", "seen_json")

    def __init__(self, n_vals: int, plan: _Plan) -> None:
        self.times: list[int] = []
        self.vals: list[list[int]] = [[] for _ in range(n_vals)]
        self.starts = [0] * len(plan.windows)
        self.sums = [[0] * len(w.sum_cols) for w in plan.windows]
        # per column with a window maximum: indexes of its suffix maxima, ascending (see online_compile)
        self.maxq: list[list[int]] = [[] for _ in plan.max_vals]
        self.hist = [0, 0, 0]  # n, sum, sum of squares (of the z-score column)
        self.prev: dict[str, Any] = {}
        # values seen so far per column, in first-seen order (a dict used as an ordered set)
        self.seen: dict[str, dict[Any, None]] = {c: {} for c in plan.first_seen}
        self.share: dict[str, dict[Any, int]] = {c: {} for c in plan.shares}
        # `seen` encoded, with the sizes it had then: the sets only grow, so equal sizes mean the same JSON
        self.seen_json: tuple[tuple[int, ...], str] | None = None


@dataclass(frozen=True)
class _WindowPlan:
    seconds: int
    sum_cols: tuple[int, ...]  # indexes into the state's value columns
    max_cols: tuple[int, ...]


@dataclass(frozen=True)
class _Plan:
    columns: tuple[str, ...]  # row columns the view reads
    val_cols: tuple[str, ...]  # row columns kept per event for window sums / maxima
    windows: tuple[_WindowPlan, ...]
    max_vals: tuple[int, ...]  # value columns with a window maximum (one suffix-maximum queue each)
    window_names: tuple[str, ...]
    zscore: str | None
    lagged: tuple[str, ...]
    first_seen: tuple[str, ...]
    first_flags: tuple[str, ...]  # columns whose first-seen flag is kept per event (`WindowNewCount`)
    shares: tuple[str, ...]


_SUMMED = (WindowSum, WindowMean, WindowNewCount)
_KEPT = (*_SUMMED, WindowMax)


def _kept(f: WindowSum | WindowMean | WindowNewCount | WindowMax) -> str:
    """The per-event value a window feature keeps: a row column, or a derived first-seen flag."""
    return f.flag if isinstance(f, WindowNewCount) else f.column


def _plan(view: EventFeatureView) -> _Plan:
    windows = view.windows()
    val_cols = tuple(dict.fromkeys(_kept(f) for f in view.features if isinstance(f, _KEPT)))
    wplans = []
    for w in windows:
        sums = {_kept(f) for f in view.features if isinstance(f, _SUMMED) and f.window == w}
        maxes = {f.column for f in view.features if isinstance(f, WindowMax) and f.window == w}
        wplans.append(
            _WindowPlan(
                w.seconds,
                tuple(val_cols.index(c) for c in sorted(sums)),
                tuple(val_cols.index(c) for c in sorted(maxes)),
            )
        )
    zs = [f.column for f in view.features if isinstance(f, HistoryZScore)]
    if len(set(zs)) > 1:
        raise ValueError(f"view {view.name}: the online path keeps one z-score column, got {sorted(set(zs))}")
    used = {getattr(f, "column", None) for f in view.features} - {None}
    return _Plan(
        columns=tuple(c for c in COLUMNS if c in used),
        val_cols=val_cols,
        windows=tuple(wplans),
        max_vals=tuple(sorted({ci for w in wplans for ci in w.max_cols})),
        window_names=tuple(w.name for w in windows),
        zscore=zs[0] if zs else None,
        lagged=tuple(dict.fromkeys(f.column for f in view.features if isinstance(f, ChangedFromPrevious))),
        first_seen=tuple(
            dict.fromkeys(f.column for f in view.features if isinstance(f, FirstSeen | WindowNewCount))
        ),
        first_flags=tuple(dict.fromkeys(f.column for f in view.features if isinstance(f, WindowNewCount))),
        shares=tuple(dict.fromkeys(f.column for f in view.features if isinstance(f, PriorShare))),
    )


class OnlineFeatures:
    """Incremental features of one event view, state per key in `store`."""

    def __init__(
        self,
        view: EventFeatureView,
        store: OnlineStore,
        cards: Mapping[str, CardProfile] | None = None,
        parked_limit: int = PARKED_LIMIT,
    ) -> None:
        self.view = view
        self.store = store
        self.cards = cards or {}
        self.plan = _plan(view)
        self._key = view.key
        self.parked_limit = parked_limit
        self._states: dict[str, _State] = {}
        self._dirty: set[str] = set()
        self._clean: dict[str, bytes] = {}  # stored blob of each in-memory state loaded or written as is
        self._parked: dict[str, tuple[bytes, _State]] = {}  # forgotten clean states, oldest first
        self._longest = max((w.seconds for w in self.plan.windows), default=0)
        self._update = compile_update(view, self.plan, {"trim": _trim})

    # -- state loading and saving -------------------------------------------------------------------
    def _store_key(self, key: str) -> str:
        return f"{self.view.name}#{key}"

    def prepare(self, keys: Iterable[str]) -> None:
        """Load the states of `keys` not yet in memory, in one store call (a parked state whose blob is
        still the stored one is reused, not decoded)."""
        missing = sorted({k for k in keys if k not in self._states})
        if not missing:
            return
        blobs = self.store.get_many([self._store_key(k) for k in missing])
        parked = self._parked
        for k in missing:
            blob = blobs.get(self._store_key(k))
            if blob is None:
                parked.pop(k, None)
                self._states[k] = _State(len(self.plan.val_cols), self.plan)
                continue
            held = parked.pop(k, None)
            reuse = held is not None and (held[0] is blob or held[0] == blob)
            self._states[k] = held[1] if reuse else self._decode(blob)  # type: ignore[index]
            self._clean[k] = blob

    def reset(self, keys: Iterable[str]) -> None:
        """Start `keys` from an empty state (written to the store at the next flush)."""
        for k in keys:
            self._states[k] = _State(len(self.plan.val_cols), self.plan)
            self._dirty.add(k)
            self._clean.pop(k, None)

    def seed(
        self,
        key: str,
        hist: list[int],
        seen: Mapping[str, dict[Any, None]],
        share: Mapping[str, dict[Any, int]],
        first: Row,
    ) -> None:
        """Start `key` from what its events before the longest window leave (`hist`; the values seen and
        counted per column, in first-seen order); `update` then replays the events inside the window,
        `first` the first of them. `prev` (the event before) is taken from `first` itself: it only feeds
        the features `update` returns for `first` (so those are not the stream's), never the state after
        it. Written to the store at the next flush."""
        st = _State(len(self.plan.val_cols), self.plan)
        st.hist = list(hist)
        st.prev = {"epoch_s": epoch_seconds(first["ts"])} | {
            c: COLUMNS[c].value(first) for c in self.plan.lagged
        }
        st.seen = {c: dict(seen.get(c, {})) for c in self.plan.first_seen}
        st.share = {c: dict(share.get(c, {})) for c in self.plan.shares}
        self._states[key] = st
        self._dirty.add(key)
        self._clean.pop(key, None)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop `keys` from memory without writing them (the next use reads the stored state)."""
        parked = self._parked
        for k in keys:
            st = self._states.pop(k, None)
            blob = self._clean.pop(k, None)
            if k in self._dirty:
                self._dirty.discard(k)
            elif st is not None and blob is not None and self.parked_limit > 0:
                self._settle(st)
                parked.pop(k, None)
                parked[k] = (blob, st)
        while len(parked) > self.parked_limit:
            del parked[next(iter(parked))]

    def flush(self) -> int:
        """Write every changed state to the store in one call; returns how many."""
        items = {}
        for k in sorted(self._dirty):
            blob = items[self._store_key(k)] = self._encode(self._states[k])
            self._clean[k] = blob
        if items:
            self.store.put_many(items)
        self._dirty.clear()
        return len(items)

    def _first_kept(self, st: _State) -> int:
        """Index of the state's first event inside the longest window of its last event (stored from)."""
        times, keep = st.times, 0
        if times:
            lo = times[-1] - self._longest
            while keep < len(times) and times[keep] < lo:
                keep += 1
        return keep

    def _settle(self, st: _State) -> None:
        """Make `st` exactly what decoding its encoded form gives (so a parked state behaves like a
        read one, even for a what-if event older than the card's last): the evicted events dropped, every
        window starting at the first kept event with its sums over all of them, maximum queues shifted."""
        keep = self._first_kept(st)
        if keep:
            del st.times[:keep]
            for col in st.vals:
                del col[:keep]
            st.maxq = [[i - keep for i in q if i >= keep] for q in st.maxq]
        st.starts = [0] * len(st.starts)
        st.sums = [[sum(st.vals[ci]) for ci in w.sum_cols] for w in self.plan.windows]

    def _encode(self, st: _State) -> bytes:
        keep = self._first_kept(st)
        # The first-seen values (most of a long-lived card's blob: every merchant it ever used) change only
        # when a new value is seen, so their JSON is kept with the state and reused until then.
        sizes = tuple(len(v) for v in st.seen.values())
        if st.seen_json is None or st.seen_json[0] != sizes:
            st.seen_json = (sizes, _dumps({c: list(v) for c, v in st.seen.items()}))
        # The keys in the order they always had: the same events always give the same blob (first-seen
        # values and shares in first-seen order; states written before kept them sorted by repr and load
        # the same).
        return (
            f'{{"t":{_dumps(st.times[keep:])},"v":{_dumps([col[keep:] for col in st.vals])},'
            f'"h":{_dumps(st.hist)},"p":{_dumps(st.prev)},"s":{st.seen_json[1]},'
            f'"r":{_dumps({c: [[k, n] for k, n in v.items()] for c, v in st.share.items()})}}}'
        ).encode()

    def _decode(self, blob: bytes) -> _State:
        doc = json.loads(blob)
        st = _State(len(self.plan.val_cols), self.plan)
        st.times, st.vals, st.hist, st.prev = doc["t"], doc["v"], doc["h"], doc["p"]
        st.seen = {c: dict.fromkeys(doc["s"].get(c, ())) for c in self.plan.first_seen}
        st.share = {c: {k: n for k, n in doc["r"].get(c, [])} for c in self.plan.shares}
        for wi, w in enumerate(self.plan.windows):
            st.sums[wi] = [sum(st.vals[ci]) for ci in w.sum_cols]
        for q, ci in zip(st.maxq, self.plan.max_vals, strict=True):
            values = st.vals[ci]
            for i, v in enumerate(values):
                while q and values[q[-1]] <= v:
                    q.pop()
                q.append(i)
        return st

    # -- the per-event path -------------------------------------------------------------------------
    def update(self, row: Row) -> dict[str, Any]:
        """The event's features (from the key's prior events), then the event joins the key's state."""
        key = row[self._key]
        st = self._states.get(key)
        if st is None:
            self.prepare([key])
            st = self._states[key]
        self._dirty.add(key)
        return self._update(st, row, epoch_seconds(row["ts"]), self.cards.get(row["card_token"]))

    def last_event_epoch(self, key: str) -> int | None:
        """Epoch seconds of the key's last event in its current state (None: no event yet)."""
        self.prepare([key])
        st = self._states[key]
        return st.prev.get("epoch_s") if st.hist[0] else None

    def state_summary(self, key: str) -> dict[str, Any] | None:
        """Counts and amounts of a key's current state (no PII: tokens and aggregates only)."""
        self.prepare([key])
        st = self._states[key]
        if not st.hist[0]:
            return None
        last = st.prev.get("epoch_s")
        summary: dict[str, Any] = {"events_seen": st.hist[0], "last_event_epoch_s": last}
        for name, w in zip(self.plan.window_names, self.plan.windows, strict=True):
            summary[f"events_in_last_{name}"] = sum(1 for ts in st.times if ts >= last - w.seconds)
        for c, seen in st.seen.items():
            summary[f"distinct_{c}"] = len(seen)
        return summary


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _trim(st: _State) -> None:
    """Drop the events every window has evicted, shifting the indexes that point into the lists."""
    cut = min(st.starts)
    del st.times[:cut]
    for col in st.vals:
        del col[:cut]
    st.starts = [s - cut for s in st.starts]
    st.maxq = [[i - cut for i in q if i >= cut] for q in st.maxq]


def load_card_profiles(catalog: Catalog) -> dict[str, CardProfile]:
    """Card profiles of every card in the lake's `cards` table."""
    rows = catalog.query("SELECT card_token, acct_open_date, credit_limit, has_chip FROM cards").to_pylist()
    return {r["card_token"]: CardProfile.from_row(r) for r in rows}


def lake_card_profiles(catalog: Catalog) -> dict[str, CardProfile]:
    """As `load_card_profiles`, but empty before the lake has a cards table (card attributes missing)."""
    from cdp.catalog.port import CatalogError

    try:
        return load_card_profiles(catalog)
    except CatalogError:
        return {}
