"""Render a view's point-in-time SQL (DuckDB dialect) from its definition, and its Athena translation.

The rendered files are committed under `features/sql/` for data scientists to read; a test fails when a
committed file differs from what the definitions render. Rewrite them with `python -m features.render`.
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
ORDER = "epoch_s, source_line, txn_id"

_CARD_ATTRIBUTE_SQL = {
    "card_age_days": "date_diff('day', c.acct_open_date, CAST(a.ts AS DATE))",
    "credit_limit": "c.credit_limit",
    "has_chip": "c.has_chip",
}


def _number(column: str) -> str:
    flag = column not in COLUMNS  # a derived first-seen flag
    return f"CAST({column} AS INTEGER)" if flag or COLUMNS[column].kind == "bool" else column


def _summed(f: WindowSum | WindowMean | WindowNewCount) -> str:
    return f.flag if isinstance(f, WindowNewCount) else f.column


def _used_columns(view: EventFeatureView) -> list[str]:
    used = [f.column for f in view.features if hasattr(f, "column")]
    return [c for c in COLUMNS if c in used]


def render_event_view(view: EventFeatureView) -> str:
    """The view's SQL over the lake tables `transactions` and `cards` (one row per transaction)."""
    key = view.key
    before = "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    tie = f"PARTITION BY {key}, epoch_s ORDER BY source_line, txn_id {before}"
    hist = f"PARTITION BY {key} ORDER BY {ORDER} {before}"
    seq = f"PARTITION BY {key} ORDER BY {ORDER}"

    def earlier(seconds: int) -> str:
        return f"PARTITION BY {key} ORDER BY epoch_s RANGE BETWEEN {seconds} PRECEDING AND 1 PRECEDING"

    sums = sorted(
        {
            (f.window.name, _summed(f))
            for f in view.features
            if isinstance(f, WindowSum | WindowMean | WindowNewCount)
        }
    )
    flagged = list(dict.fromkeys(f.column for f in view.features if isinstance(f, WindowNewCount)))
    maxes = sorted({(f.window.name, f.column) for f in view.features if isinstance(f, WindowMax)})

    aggs: list[tuple[str, str]] = []  # (comment, expression AS alias)
    aggs.append(("prior events in the same second", f"count(*) OVER ({tie}) AS _tie_n"))
    for col in sorted({c for _, c in sums}):
        aggs.append(("", f"sum({_number(col)}) OVER ({tie}) AS _tie_sum_{col}"))
    for col in sorted({c for _, c in maxes}):
        aggs.append(("", f"max({_number(col)}) OVER ({tie}) AS _tie_max_{col}"))
    for w in view.windows():
        comment = f"prior events in earlier seconds of the last {w.name} ([t - {w.seconds} s, t - 1 s])"
        aggs.append((comment, f"count(*) OVER ({earlier(w.seconds)}) AS _{w.name}_n"))
        for wn, col in sums:
            if wn == w.name:
                aggs.append(("", f"sum({_number(col)}) OVER ({earlier(w.seconds)}) AS _{w.name}_sum_{col}"))
        for wn, col in maxes:
            if wn == w.name:
                aggs.append(("", f"max({_number(col)}) OVER ({earlier(w.seconds)}) AS _{w.name}_max_{col}"))
    aggs.append(("all prior events of the key", f"count(*) OVER ({hist}) AS _hist_n"))
    for f in view.features:
        if isinstance(f, HistoryZScore):
            c = _number(f.column)
            aggs.append(("", f"sum({c}) OVER ({hist}) AS _hist_sum_{f.column}"))
            aggs.append(("", f"sum({c} * {c}) OVER ({hist}) AS _hist_sumsq_{f.column}"))
    lagged = ["epoch_s"] + [f.column for f in view.features if isinstance(f, ChangedFromPrevious)]
    for col in dict.fromkeys(lagged):
        aggs.append(("", f"lag({col}) OVER ({seq}) AS _prev_{col}"))
    for f in view.features:
        if isinstance(f, FirstSeen):
            aggs.append(
                (
                    "",
                    f"row_number() OVER (PARTITION BY {key}, {f.column} ORDER BY {ORDER}) "
                    f"AS _rank_{f.column}",
                )
            )
        if isinstance(f, PriorShare):
            same = (
                f"PARTITION BY {key}, {f.column} ORDER BY {ORDER} "
                "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
            )
            aggs.append(("", f"count(*) OVER ({same}) AS _same_{f.column}_n"))

    def n(w: str) -> str:
        return f"(a._{w}_n + a._tie_n)"

    def total(w: str, col: str) -> str:
        return f"(coalesce(a._{w}_sum_{col}, 0) + coalesce(a._tie_sum_{col}, 0))"

    out: list[tuple[str, str]] = []
    for f in view.features:
        if isinstance(f, Current):
            expr = f"a.{f.column}"
        elif isinstance(f, WindowCount):
            expr = n(f.window.name)
        elif isinstance(f, WindowSum):
            expr = f"CAST({total(f.window.name, f.column)} AS BIGINT)"
        elif isinstance(f, WindowNewCount):
            expr = f"CAST({total(f.window.name, f.flag)} AS BIGINT)"
        elif isinstance(f, WindowMean):
            w = f.window.name
            expr = f"CASE WHEN {n(w)} = 0 THEN NULL ELSE CAST({total(w, f.column)} AS DOUBLE) / {n(w)} END"
        elif isinstance(f, WindowMax):
            m, t = f"a._{f.window.name}_max_{f.column}", f"a._tie_max_{f.column}"
            expr = f"CAST(greatest(coalesce({m}, {t}), coalesce({t}, {m})) AS BIGINT)"
        elif isinstance(f, HistoryZScore):
            c, s, q = f.column, f"a._hist_sum_{f.column}", f"a._hist_sumsq_{f.column}"
            var = f"CAST(a._hist_n * {q} - {s} * {s} AS DOUBLE) / (CAST(a._hist_n AS DOUBLE) * a._hist_n)"
            expr = (
                f"CASE WHEN a._hist_n < 2 OR a._hist_n * {q} - {s} * {s} <= 0 THEN NULL "
                f"ELSE (CAST(a.{c} AS DOUBLE) - CAST({s} AS DOUBLE) / a._hist_n) / sqrt({var}) END"
            )
        elif isinstance(f, SecondsSincePrevious):
            expr = "a.epoch_s - a._prev_epoch_s"
        elif isinstance(f, FirstSeen):
            expr = f"CASE WHEN a.{f.column} IS NULL THEN false ELSE a._rank_{f.column} = 1 END"
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

    cols = _used_columns(view)
    lines = [
        f"-- Feature view `{view.name}`: one row per transaction, features from the prior events of the same",
        f"-- {key}. Rendered from the definitions in features/ by `python -m features`: do not edit.",
        "-- Event order: (ts, source_line, txn_id); prior = strictly earlier in that order. A window of W",
        "-- seconds holds the prior events with ts in [t - W, t] (an event exactly W earlier is in): the",
        "-- earlier seconds come from a RANGE frame over epoch seconds, the same second from a ROWS frame.",
        "WITH events AS (",
        "    SELECT",
        "        t.txn_id, t.card_token, t.user_token, t.ts, t.year, t.month, t.source_line, t.is_fraud,",
        "        CAST(epoch(t.ts) AS BIGINT) AS epoch_s,",
    ]
    lines += [f"        {COLUMNS[c].sql} AS {c}," for c in cols]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["    FROM transactions AS t", "),"]
    source = "events"
    if flagged:  # per-event first-seen flags, summed over windows below
        lines += ["flagged AS (", "    SELECT", "        events.*,"]
        for col in flagged:
            rank = f"row_number() OVER (PARTITION BY {key}, {col} ORDER BY {ORDER})"
            lines.append(f"        ({col} IS NOT NULL AND {rank} = 1) AS {first_flag(col)},")
        lines[-1] = lines[-1].rstrip(",")
        lines += ["    FROM events", "),"]
        source = "flagged"
    lines += ["aggregates AS (", "    SELECT", f"        {source}.*,"]
    for comment, expr in aggs:
        if comment:
            lines.append(f"        -- {comment}")
        lines.append(f"        {expr},")
    lines[-1] = lines[-1].rstrip(",")
    lines += [f"    FROM {source}", ")", "SELECT"]
    lines += [f"    a.{c}," for c in view.passthrough]
    lines.append(f"    a.{view.label} AS label,")
    lines += [f"    {expr} AS {name}," for name, expr in out]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["FROM aggregates AS a"]
    if any(isinstance(f, CardAttribute) for f in view.features):
        lines.append("LEFT JOIN cards AS c ON c.card_token = a.card_token")
    return "\n".join(lines) + "\n"
