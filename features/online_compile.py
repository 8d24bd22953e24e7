"""Render a view's per-event update as one Python function, the online twin of `features.render`.

The function reads the key's state (prior events only) into the event's features, then adds the event to
the state. Generating it from the view's plan keeps the hot path free of per-feature dispatch (one dict
literal per event) while the definition stays the one in `features.spec`. Row columns with an entry in
`INLINE_COLUMNS` are written into the function as expressions (no call per column per event); a test
holds every inline expression equal to the column's Python form in `features.columns`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from math import sqrt
from typing import Any

from features.columns import COLUMNS, HIGH_RISK_MCCS
from features.mcc import mcc_group
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
    "card_age_days": (  # clamped at 0, as offline: rows before the card's open month are kept, flagged
        "(None if profile is None or profile.open_day is None else max(0, t // 86400 - profile.open_day))"
    ),
    "credit_limit": "(None if profile is None else profile.credit_limit)",
    "has_chip": "(None if profile is None else profile.has_chip)",
}

# derived row columns as expressions over `row`, equal to `COLUMNS[name].value(row)` on every row
INLINE_COLUMNS: dict[str, str] = {
    "city_key": (
        "(None if row['channel'] == 'online' or row['merchant_city'] is None "
        "else f\"{row['merchant_city']}|{row['merchant_state'] or ''}\")"
    ),
    "hour_of_day": "row['ts'].hour",
    "is_online": "row['channel'] == 'online'",
    "is_foreign": "(row['merchant_state'] is not None and len(row['merchant_state']) > 2)",
    "is_refund": "row['amount_cents'] < 0",
    "is_purchase": "row['amount_cents'] > 0",
    "has_error": "bool(row['errors'])",
    "has_bad_credential": "'Bad ' in ','.join(row['errors'] or ())",
    "mcc_group": "MCC_GROUP(row['mcc'])",
    "is_high_risk_mcc": "(row['mcc'] is not None and int(row['mcc']) in HIGH_RISK)",
}

# names the inline expressions use
INLINE_SCOPE: dict[str, Any] = {"MCC_GROUP": mcc_group, "HIGH_RISK": frozenset(HIGH_RISK_MCCS)}


def column_source(column: str) -> str:
    """The expression the update reads `column` with (a row field, an inline expression, or a call)."""
    plain = COLUMNS[column].row_field
    if plain:
        return f"row[{plain!r}]"
    return INLINE_COLUMNS.get(column, f"COL_{column}(row)")


def _as_int(column: str) -> str:
    """The per-event value kept for a window column: flags as 0/1, integer columns as int."""
    col = COLUMNS.get(column)
    if col is None or col.kind == "bool":  # derived first-seen flags are booleans too
        return f"(1 if x_{column} else 0)"
    return f"int(x_{column})"


def update_source(view: EventFeatureView, plan: Any) -> str:
    """Python source of `update(st, row, t, profile) -> dict` for the view.

    Window maxima share one queue per column: the indexes of the column's suffix maxima (each value
    greater than every later one), ascending. A window's maximum is the value at the first index inside
    the window; indexes before every window are dropped when the state is trimmed."""
    wi = {n: i for i, n in enumerate(plan.window_names)}
    mq = {ci: k for k, ci in enumerate(plan.max_vals)}
    L: list[str] = ["def update(st, row, t, profile):"]
    add = L.append
    for c in plan.columns:
        add(f"    x_{c} = {column_source(c)}")
    for c in plan.first_seen:
        add(f"    seen_{c} = st.seen[{c!r}]; new_{c} = x_{c} is not None and x_{c} not in seen_{c}")
    for c in plan.first_flags:
        add(f"    x_{first_flag(c)} = new_{c}")
    for c in plan.shares:
        add(f"    share_{c} = st.share[{c!r}]; had_{c} = 0 if x_{c} is None else share_{c}.get(x_{c}, 0)")
    add("    times = st.times; size = len(times); vals = st.vals; starts = st.starts; sums = st.sums")
    for k, ci in enumerate(mq):
        add(f"    q{k} = st.maxq[{k}]; col{k} = vals[{ci}]")
    for i, w in enumerate(plan.windows):
        add(f"    sm{i} = sums[{i}]; s{i} = starts[{i}]; lo = t - {w.seconds}")
        add(f"    if s{i} < size and times[s{i}] < lo:")
        add(f"        while s{i} < size and times[s{i}] < lo:")
        for j, ci in enumerate(w.sum_cols):
            add(f"            sm{i}[{j}] -= vals[{ci}][s{i}]")
        add(f"            s{i} += 1")
        add(f"        starts[{i}] = s{i}")
        add(f"    n{i} = size - s{i}")
        for ci in w.max_cols:
            k = mq[ci]
            add(f"    m{i}_{ci} = col{k}[q{k}[bisect_left(q{k}, s{i})]] if n{i} else None")
    add("    hist = st.hist; hn = hist[0]; prev = st.prev")
    if plan.zscore is not None:
        add("    hs = hist[1]; hq = hist[2]; spread = hn * hq - hs * hs")
        add(
            "    z = None if hn < 2 or spread <= 0 else "
            f"(float(x_{plan.zscore}) - float(hs) / hn) / sqrt(float(spread) / (float(hn) * hn))"
        )

    def sum_ref(f: Any) -> str:
        i = wi[f.window.name]
        summed = f.flag if isinstance(f, WindowNewCount) else f.column
        return f"sm{i}[{plan.windows[i].sum_cols.index(plan.val_cols.index(summed))}]"

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
            e = f"m{wi[f.window.name]}_{plan.val_cols.index(f.column)}"
        elif isinstance(f, HistoryZScore):
            e = "z"
        elif isinstance(f, SecondsSincePrevious):
            e = "(None if hn == 0 else t - prev['epoch_s'])"
        elif isinstance(f, FirstSeen):
            e = f"new_{f.column}"
        elif isinstance(f, PriorShare):
            c = f.column
            e = f"(None if x_{c} is None or hn == 0 else float(had_{c}) / hn)"
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
        add(f"    v{ci} = {_as_int(c)}; vals[{ci}].append(v{ci})")
    for i, w in enumerate(plan.windows):
        for j, ci in enumerate(w.sum_cols):
            add(f"    sm{i}[{j}] += v{ci}")
    for ci, k in mq.items():
        add(f"    while q{k} and col{k}[q{k}[-1]] <= v{ci}: q{k}.pop()")
        add(f"    q{k}.append(size)")
    if plan.zscore is not None:
        add(f"    a = x_{plan.zscore}; hist[0] = hn + 1; hist[1] = hs + a; hist[2] = hq + a * a")
    else:
        add("    hist[0] = hn + 1")
    add("    prev['epoch_s'] = t")
    for c in plan.lagged:
        add(f"    prev[{c!r}] = x_{c}")
    for c in plan.first_seen:
        add(f"    if new_{c}: seen_{c}[x_{c}] = None")
    for c in plan.shares:
        add(f"    if x_{c} is not None: share_{c}[x_{c}] = had_{c} + 1")
    if plan.windows:  # windows are sorted by length: the longest one starts earliest
        add(f"    if s{len(plan.windows) - 1} >= {TRIM_AT}: trim(st)")
    add("    return out")
    return "\n".join(L) + "\n"


def compile_update(
    view: EventFeatureView, plan: Any, helpers: dict[str, Callable[..., Any]]
) -> Callable[..., Any]:
    """Compile `update_source` with the row column functions and `helpers` in scope."""
    scope: dict[str, Any] = {f"COL_{c}": COLUMNS[c].value for c in plan.columns}
    scope |= INLINE_SCOPE | helpers | {"bisect_left": bisect_left, "sqrt": sqrt}
    exec(compile(update_source(view, plan), f"<online update of {view.name}>", "exec"), scope)  # noqa: S102
    return scope["update"]
