"""Render a view's point-in-time SQL (DuckDB dialect) from its definition, and its Athena translation.

The rendered files are committed under `features/sql/` for data scientists to read; a test fails when a
committed file differs from what the definitions render. Rewrite them with `python -m features`.

How the SQL stays fast at full size (tens of millions of rows): every window is a slice of the key's event
sequence, so it is computed from running values instead of one framed aggregate per feature.
- One pass sorted by (key, epoch_s) counts, for each window of W seconds, the key's events in seconds
  before t - W: that count is the position of the window's first event in the key's sequence.
- One pass in event order keeps running sums (before the event) and the event's position; the number of
  prior events in a window is position - window start, a window sum is the running sum minus the running
  sum at the window's first event (`lag` by that number of rows), a window max a ROWS frame of that size.
- First-seen flags come from the first event key per (key, value), found by a hash aggregate.
"""

from __future__ import annotations

from pathlib import Path

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

SQL_DIR = Path(__file__).with_name("sql")
ORDER = "epoch_s, event_seq, txn_id"
# One BIGINT per event in event order, (epoch_s, event_seq) packed: exact while 0 <= event_seq < 2^31 (the
# lake guarantees it: source line < 2^30 plus a card offset < 2^30, see cdp.lake.transactions) and
# |epoch_s| < 2^32 (years 1834-2106). A card's events have distinct event_seq values (the lake's txn_id is
# built from the card and event_seq), so it tells a key's events apart and the txn_id tie-break of the
# event order never decides.
EVENT_KEY = "CAST(epoch(t.ts) AS BIGINT) * 2147483648 + t.event_seq"

_CARD_ATTRIBUTE_SQL = {
    # clamped at 0: a row dated before its card's open month is kept (flagged, cdp.ibm.card_life)
    "card_age_days": (
        "CASE WHEN date_diff('day', c.acct_open_date, CAST(a.ts AS DATE)) < 0 THEN 0 "
        "ELSE date_diff('day', c.acct_open_date, CAST(a.ts AS DATE)) END"
    ),
    "credit_limit": "c.credit_limit",
    "has_chip": "c.has_chip",
}


def _number(column: str) -> str:
    """The column as a number that a running sum adds up (flags count 1, nulls add nothing)."""
    flag = column not in COLUMNS  # a derived first-seen flag
    value = f"CAST({column} AS INTEGER)" if flag or COLUMNS[column].kind == "bool" else column
    return f"coalesce({value}, 0)"


def _summed(f: WindowSum | WindowMean | WindowNewCount) -> str:
    return f.flag if isinstance(f, WindowNewCount) else f.column


def _used_columns(view: EventFeatureView) -> list[str]:
    used = [f.column for f in view.features if hasattr(f, "column")]
    return [c for c in COLUMNS if c in used]


def _reads(feature: object, column: str) -> bool:
    return getattr(feature, "column", None) == column


def _first_seen_only(feature: object) -> bool:
    """Features whose column is read only to find the key's first event with each value."""
    return isinstance(feature, FirstSeen | WindowNewCount)


def _select(name: str, source: str, exprs: list[tuple[str, str]], tail: str = "") -> list[str]:
    """One CTE `name AS (SELECT source.*, <exprs> FROM source <tail>)`; exprs are (comment, expression)."""
    lines = [f"{name} AS (", "    SELECT", f"        {source}.*,"]
    for comment, expr in exprs:
        if comment:
            lines.append(f"        -- {comment}")
        lines.append(f"        {expr},")
    lines[-1] = lines[-1].rstrip(",")
    lines += [f"    FROM {source}{tail}", "),"]
    return lines


def render_event_view(view: EventFeatureView) -> str:
    """The view's SQL over the lake tables `transactions` and `cards` (one row per transaction)."""
    key = view.key
    seq = f"PARTITION BY {key} ORDER BY {ORDER}"
    prior = f"{seq} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    windows = view.windows()

    summed = list(
        dict.fromkeys(
            _summed(f) for f in view.features if isinstance(f, WindowSum | WindowMean | WindowNewCount)
        )
    )
    window_sums = sorted(
        {
            (f.window.seconds, f.window.name, _summed(f))
            for f in view.features
            if isinstance(f, WindowSum | WindowMean | WindowNewCount)
        }
    )
    window_maxes = sorted(
        {(f.window.seconds, f.window.name, f.column) for f in view.features if isinstance(f, WindowMax)}
    )
    zscored = list(dict.fromkeys(f.column for f in view.features if isinstance(f, HistoryZScore)))
    first_seen = list(
        dict.fromkeys(f.column for f in view.features if isinstance(f, FirstSeen | WindowNewCount))
    )

    cols = _used_columns(view)
    lines = [
        f"-- Feature view `{view.name}`: one row per transaction, features from the prior events of the same",
        f"-- {key}. Rendered from the definitions in features/ by `python -m features`: do not edit.",
        "-- Event order: (ts, event_seq, txn_id); prior = strictly earlier in that order. A window of W",
        "-- seconds holds the prior events with ts in [t - W, t] (an event exactly W earlier is in): the",
        "-- prior events from the window's first event (the first at or after t - W) to the one before.",
        "-- event_key packs (epoch_s, event_seq) in a BIGINT (a card's events have distinct event_seq).",
        "WITH events AS (",
        "    SELECT",
        "        t.txn_id, t.card_token, t.user_token, t.ts, t.year, t.month, t.event_seq, t.is_fraud,",
        "        CAST(epoch(t.ts) AS BIGINT) AS epoch_s,",
        f"        {EVENT_KEY} AS event_key,",
    ]
    lines += [f"        {COLUMNS[c].sql} AS {c}," for c in cols]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["    FROM transactions AS t", "),"]

    # first event of the key with each value of a first-seen column
    for col in first_seen:
        lines += [
            f"first_{col} AS (",
            f"    SELECT {key}, min(event_key) AS first_key FROM events GROUP BY {key}, {col}",
            "),",
        ]
    source = "events"
    if first_seen:
        exprs = []
        joins = ""
        for i, col in enumerate(first_seen):
            comment = "the key's first event with this value (never for a null value)" if i == 0 else ""
            exprs.append(
                (comment, f"(e.{col} IS NOT NULL AND f{i}.first_key IS NOT NULL) AS {first_flag(col)}")
            )
            on = f"f{i}.{key} = e.{key} AND f{i}.first_key = e.event_key"
            joins += f"\n    LEFT JOIN first_{col} AS f{i} ON {on}"
        # only what later steps read: the columns used by first-seen features alone stop here
        later = [c for c in cols if any(_reads(f, c) for f in view.features if not _first_seen_only(f))]
        kept = dict.fromkeys([*view.passthrough, view.label, key, "epoch_s", "event_key", *later])
        names = [f"e.{c}" for c in kept]
        lines += ["flagged AS (", "    SELECT"]
        lines += [f"        {', '.join(names[i : i + 8])}," for i in range(0, len(names), 8)]
        for comment, expr in exprs:
            if comment:
                lines.append(f"        -- {comment}")
            lines.append(f"        {expr},")
        lines[-1] = lines[-1].rstrip(",")
        lines += [f"    FROM events AS e{joins}", "),"]
        source = "flagged"

    # where each window starts: the number of the key's events in seconds before t - W
    if windows:
        starts = []
        for i, w in enumerate(windows):
            comment = "events of the key before each window's first second (t - W)" if i == 0 else ""
            starts.append(
                (
                    comment,
                    f"count(*) OVER (PARTITION BY {key} ORDER BY epoch_s "
                    f"RANGE BETWEEN UNBOUNDED PRECEDING AND {w.seconds + 1} PRECEDING) AS _{w.name}_start",
                )
            )
        lines += _select("positioned", source, starts)
        source = "positioned"

    # running values before each event, in event order
    running = [("the event's position = number of prior events", f"row_number() OVER ({seq}) - 1 AS _hist_n")]
    for col in summed:
        total = f"coalesce(sum({_number(col)}) OVER ({prior}), 0)"
        if col not in zscored:  # narrower rows to sort; z-scores keep the wide sum for n * sum of squares
            total = f"CAST({total} AS BIGINT)"
        running.append(("", f"{total} AS _cum_{col}"))
    for col in zscored:
        if col not in summed:
            running.append(("", f"coalesce(sum({_number(col)}) OVER ({prior}), 0) AS _cum_{col}"))
        running.append(
            ("", f"coalesce(sum({_number(col)} * {_number(col)}) OVER ({prior}), 0) AS _cumsq_{col}")
        )
    lagged = ["epoch_s"] + [f.column for f in view.features if isinstance(f, ChangedFromPrevious)]
    for col in dict.fromkeys(lagged):
        running.append(("", f"lag({col}) OVER ({seq}) AS _prev_{col}"))
    for f in view.features:
        if isinstance(f, PriorShare):
            same = f"PARTITION BY {key}, {f.column} ORDER BY {ORDER}"
            running.append(("", f"row_number() OVER ({same}) - 1 AS _same_{f.column}_n"))
    lines += _select("running", source, running)

    # windows as slices of the sequence: [position - n, position - 1]
    sliced = []
    for w in windows:
        sliced.append((f"prior events in the last {w.name}", f"_hist_n - _{w.name}_start AS _{w.name}_n"))
        n = f"_hist_n - _{w.name}_start"
        for _, wn, col in window_sums:
            if wn == w.name:
                sliced.append(("", f"_cum_{col} - lag(_cum_{col}, {n}) OVER ({seq}) AS _{w.name}_sum_{col}"))
        for _, wn, col in window_maxes:
            if wn == w.name:
                sliced.append(
                    (
                        "",
                        f"max({col}) OVER ({seq} ROWS BETWEEN {n} PRECEDING AND 1 PRECEDING) "
                        f"AS _{w.name}_max_{col}",
                    )
                )
    if sliced:
        lines += _select("aggregates", "running", sliced)
        source = "aggregates"
    else:
        source = "running"
    lines[-1] = ")"

    out: list[tuple[str, str]] = []
    for f in view.features:
        if isinstance(f, Current):
            expr = f"a.{f.column}"
        elif isinstance(f, WindowCount):
            expr = f"a._{f.window.name}_n"
        elif isinstance(f, WindowSum):
            expr = f"CAST(a._{f.window.name}_sum_{f.column} AS BIGINT)"
        elif isinstance(f, WindowNewCount):
            expr = f"CAST(a._{f.window.name}_sum_{f.flag} AS BIGINT)"
        elif isinstance(f, WindowMean):
            w = f.window.name
            expr = (
                f"CASE WHEN a._{w}_n = 0 THEN NULL ELSE CAST(a._{w}_sum_{f.column} AS DOUBLE) / a._{w}_n END"
            )
        elif isinstance(f, WindowMax):
            expr = f"CAST(a._{f.window.name}_max_{f.column} AS BIGINT)"
        elif isinstance(f, HistoryZScore):
            c, s, q = f.column, f"a._cum_{f.column}", f"a._cumsq_{f.column}"
            var = f"CAST(a._hist_n * {q} - {s} * {s} AS DOUBLE) / (CAST(a._hist_n AS DOUBLE) * a._hist_n)"
            expr = (
                f"CASE WHEN a._hist_n < 2 OR a._hist_n * {q} - {s} * {s} <= 0 THEN NULL "
                f"ELSE (CAST(a.{c} AS DOUBLE) - CAST({s} AS DOUBLE) / a._hist_n) / sqrt({var}) END"
            )
        elif isinstance(f, SecondsSincePrevious):
            expr = "a.epoch_s - a._prev_epoch_s"
        elif isinstance(f, FirstSeen):
            expr = f"a.{first_flag(f.column)}"
        elif isinstance(f, PriorShare):
            expr = (
                f"CASE WHEN a.{f.column} IS NULL OR a._hist_n = 0 THEN NULL "
                f"ELSE CAST(a._same_{f.column}_n AS DOUBLE) / a._hist_n END"
            )
        elif isinstance(f, ChangedFromPrevious):
            expr = f"coalesce(a.{f.column} <> a._prev_{f.column}, false)"
        elif isinstance(f, CardAttribute):
            expr = _CARD_ATTRIBUTE_SQL[f.attribute]
        else:  # pragma: no cover - every kind is handled above
            raise TypeError(f"unknown feature kind {type(f).__name__}")
        out.append((f.name, expr))

    lines.append("SELECT")
    lines += [f"    a.{c}," for c in view.passthrough]
    lines.append(f"    a.{view.label} AS label,")
    lines += [f"    {expr} AS {name}," for name, expr in out]
    lines[-1] = lines[-1].rstrip(",")
    lines += [f"FROM {source} AS a"]
    if any(isinstance(f, CardAttribute) for f in view.features):
        lines.append("LEFT JOIN cards AS c ON c.card_token = a.card_token")
    return "\n".join(lines) + "\n"
