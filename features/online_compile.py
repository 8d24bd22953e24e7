"""Render a view's per-event update as one Python function, the online twin of `features.render`.

The function reads the key's state (prior events only) into the event's features, then adds the event to
the state. Generating it from the view's plan keeps the hot path free of per-feature dispatch (one dict
literal per event) while the definition stays the one in `features.spec`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from features.columns import COLUMNS
from features.spec import (
    CardAttribute,
    ChangedFromPrevious,
    Current,
    EventFeatureView,
    FirstSeen,
    HistoryZScore,
    PriorShare,
    SecondsSincePrevious,
    WindowCount,
    WindowMax,
    WindowMean,
    WindowNewCount,
    WindowSum,
    first_flag,
)

TRIM_AT = 512  # drop evicted events from the state lists once this many pile up

# card attributes inlined into the update (`profile` is a `features.online.CardProfile` or None)
_CARD_ATTRIBUTE_PY = {
    "card_age_days": (
        "(None if profile is None or profile.open_day is None else t // 86400 - profile.open_day)"
    ),
    "credit_limit": "(None if profile is None else profile.credit_limit)",
    "has_chip": "(None if profile is None else profile.has_chip)",
}


def update_source(view: EventFeatureView, plan: Any) -> str:
    """Python source of `update(st, row, t, profile) -> dict` for the view."""
    wi = {n: i for i, n in enumerate(plan.window_names)}
    L: list[str] = ["def update(st, row, t, profile):"]
    add = L.append
    for c in plan.columns:
        plain = COLUMNS[c].row_field
        add(f"    x_{c} = row[{plain!r}]" if plain else f"    x_{c} = COL_{c}(row)")
    for c in plan.first_flags:
        add(f"    x_{first_flag(c)} = x_{c} is not None and x_{c} not in st.seen[{c!r}]")
    add("    times = st.times; size = len(times); vals = st.vals; starts = st.starts; sums = st.sums")
    for i, w in enumerate(plan.windows):
        add(f"    s{i} = starts[{i}]; lo = t - {w.seconds}")
        add(f"    if s{i} < size and times[s{i}] < lo:")
        add(f"        sm = sums[{i}]")
        add(f"        while s{i} < size and times[s{i}] < lo:")
        for j, ci in enumerate(w.sum_cols):
            add(f"            sm[{j}] -= vals[{ci}][s{i}]")
        add(f"            s{i} += 1")
        add(f"        starts[{i}] = s{i}")
        add(f"    n{i} = size - s{i}")
        for j, ci in enumerate(w.max_cols):
            add(f"    q = st.maxq[{i}][{j}]")
            add(f"    while q and q[0] < s{i}: q.popleft()")
            add(f"    m{i}_{j} = vals[{ci}][q[0]] if q else None")
    add("    hist = st.hist; hn = hist[0]; prev = st.prev")

    def sum_ref(f: Any) -> str:
        i = wi[f.window.name]
        summed = f.flag if isinstance(f, WindowNewCount) else f.column
        return f"sums[{i}][{plan.windows[i].sum_cols.index(plan.val_cols.index(summed))}]"

    items = []
    for f in view.features:
        if isinstance(f, Current):
            e = f"x_{f.column}"
        elif isinstance(f, WindowCount):
            e = f"n{wi[f.window.name]}"
        elif isinstance(f, WindowSum | WindowNewCount):
            e = sum_ref(f)
        elif isinstance(f, WindowMean):
            n = f"n{wi[f.window.name]}"
            e = f"(None if {n} == 0 else float({sum_ref(f)}) / {n})"
        elif isinstance(f, WindowMax):
            i = wi[f.window.name]
            e = f"m{i}_{plan.windows[i].max_cols.index(plan.val_cols.index(f.column))}"
        elif isinstance(f, HistoryZScore):
            e = f"zscore(hist, x_{f.column})"
        elif isinstance(f, SecondsSincePrevious):
            e = "(None if hn == 0 else t - prev['epoch_s'])"
        elif isinstance(f, FirstSeen):
            e = f"(x_{f.column} is not None and x_{f.column} not in st.seen[{f.column!r}])"
        elif isinstance(f, PriorShare):
            c = f.column
            e = f"(None if x_{c} is None or hn == 0 else float(st.share[{c!r}].get(x_{c}, 0)) / hn)"
        elif isinstance(f, ChangedFromPrevious):
            c = f.column
            e = f"(x_{c} is not None and prev.get({c!r}) is not None and x_{c} != prev[{c!r}])"
        elif isinstance(f, CardAttribute):
            e = _CARD_ATTRIBUTE_PY[f.attribute]
        else:  # pragma: no cover
            raise TypeError(f"unknown feature kind {type(f).__name__}")
        items.append(f"        {f.name!r}: {e},")
    add("    out = {")
    L.extend(items)
    add("    }")

    # the event joins the state
    add("    times.append(t)")
    for ci, c in enumerate(plan.val_cols):
        add(f"    v{ci} = int(x_{c}); vals[{ci}].append(v{ci})")
    for i, w in enumerate(plan.windows):
        for j, ci in enumerate(w.sum_cols):
            add(f"    sums[{i}][{j}] += v{ci}")
        for j, ci in enumerate(w.max_cols):
            add(f"    q = st.maxq[{i}][{j}]; col = vals[{ci}]")
            add(f"    while q and col[q[-1]] <= v{ci}: q.pop()")
            add("    q.append(size)")
    if plan.zscore is not None:
        add(f"    a = x_{plan.zscore}; hist[0] = hn + 1; hist[1] += a; hist[2] += a * a")
    else:
        add("    hist[0] = hn + 1")
    add("    prev['epoch_s'] = t")
    for c in plan.lagged:
        add(f"    prev[{c!r}] = x_{c}")
    for c in plan.first_seen:
        add(f"    if x_{c} is not None: st.seen[{c!r}].add(x_{c})")
    for c in plan.shares:
        add(f"    if x_{c} is not None: d = st.share[{c!r}]; d[x_{c}] = d.get(x_{c}, 0) + 1")
    if plan.windows:  # windows are sorted by length: the longest one starts earliest
        add(f"    if s{len(plan.windows) - 1} >= {TRIM_AT}: trim(st)")
    add("    return out")
    return "\n".join(L) + "\n"


def compile_update(
    view: EventFeatureView, plan: Any, helpers: dict[str, Callable[..., Any]]
) -> Callable[..., Any]:
    """Compile `update_source` with the row column functions and `helpers` in scope."""
    scope: dict[str, Any] = {f"COL_{c}": COLUMNS[c].value for c in plan.columns}
    scope |= helpers | {"deque": deque}
    exec(compile(update_source(view, plan), f"<online update of {view.name}>", "exec"), scope)  # noqa: S102
    return scope["update"]
