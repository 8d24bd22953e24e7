"""Render an as-of view's point-in-time SQL (DuckDB dialect) from its definition (`features.asof_spec`).

The SQL computes one row per key and cut-off, for every cut-off listed in the lake table `as_of_dates`
(one TIMESTAMP column `as_of`), from the key's transactions strictly before the cut-off. Profile
attributes come from `customers`. The rendered file is committed under `features/sql/` like the event views.
"""

from __future__ import annotations

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
from features.columns import COLUMNS

AS_OF_TABLE = "as_of_dates"

_PROFILE_SQL = {
    "yearly_income": "cu.yearly_income",
    "fico_score": "cu.fico_score",
    "num_credit_cards": "cu.num_credit_cards",
    "gender": "cu.gender",
    "age_band_start": (
        "CAST(year(a.as_of) - CAST(split_part(cu.birth_year_band, '-', 2) AS INTEGER) AS INTEGER)"
    ),
}


def _where_sql(where: tuple[Where, ...]) -> list[str]:
    out = []
    for w in where:
        if COLUMNS[w.column].kind == "bool":
            out.append(f"e.{w.column}")
        else:
            value = w.value.replace("'", "''") if isinstance(w.value, str) else w.value
            out.append(f"e.{w.column} = '{value}'")
    return out


def _condition(agg: Aggregate) -> str | None:
    start, end = agg.period.bounds()
    conds = []
    if start is not None:
        conds.append(f"e.epoch_s >= c.as_of_s - {start}")
    if end:
        conds.append(f"e.epoch_s < c.as_of_s - {end}")
    conds += _where_sql(agg.where)
    return " AND ".join(conds) if conds else None


def _aggregate_sql(agg: Aggregate) -> str:
    cond = _condition(agg)
    if isinstance(agg, Count):
        return "count(*)" if cond is None else f"CAST(sum(CASE WHEN {cond} THEN 1 ELSE 0 END) AS BIGINT)"
    if isinstance(agg, Sum):
        value = f"e.{agg.column}" if cond is None else f"CASE WHEN {cond} THEN e.{agg.column} ELSE 0 END"
        return f"CAST(sum({value}) AS BIGINT)"
    if isinstance(agg, Distinct):
        value = f"e.{agg.column}" if cond is None else f"CASE WHEN {cond} THEN e.{agg.column} END"
        return f"count(DISTINCT {value})"
    raise TypeError(f"unknown aggregate {type(agg).__name__}")  # pragma: no cover


def render_asof_view(view: AsOfFeatureView) -> str:
    """The view's SQL over `transactions`, `customers` and `as_of_dates` (one row per key and as_of)."""
    key = view.key
    aggs = view.aggregates()
    agg_alias = {a: f"_a{i}" for i, a in enumerate(aggs)}
    lines = [
        f"-- As-of view `{view.name}`: one row per {key} and cut-off `as_of` (every row of the table",
        f"-- {AS_OF_TABLE}), from the {key}'s transactions with ts < as_of only. Rendered from the",
        "-- definitions in features/ by `python -m features`: do not edit. A period of (start, end) days",
        "-- holds the events with ts in [as_of - start days, as_of - end days). Amounts are in cents.",
        "WITH cutoffs AS (",
        f"    SELECT as_of, CAST(epoch(as_of) AS BIGINT) AS as_of_s FROM {AS_OF_TABLE}",
        "),",
        "events AS (",
        "    SELECT",
        f"        t.{key},",
        "        CAST(epoch(t.ts) AS BIGINT) AS epoch_s,",
    ]
    lines += [f"        {COLUMNS[c].sql} AS {c}," for c in view.columns() if c != key]
    lines[-1] = lines[-1].rstrip(",")
    lines += [
        "    FROM transactions AS t",
        "),",
        "aggregates AS (",
        "    SELECT",
        f"        c.as_of, c.as_of_s, e.{key},",
    ]
    for a in aggs:
        lines.append(f"        {_aggregate_sql(a)} AS {agg_alias[a]},")
    for i, f in enumerate(view.features):
        if isinstance(f, DaysSince):
            cond = " AND ".join(_where_sql(f.where))
            value = f"CASE WHEN {cond} THEN e.epoch_s END" if cond else "e.epoch_s"
            fn = "max" if f.which == "last" else "min"
            lines.append(f"        {fn}({value}) AS _t{i},")
    lines[-1] = lines[-1].rstrip(",")
    lines += [
        "    FROM events AS e",
        "    JOIN cutoffs AS c ON e.epoch_s < c.as_of_s",
        f"    GROUP BY c.as_of, c.as_of_s, e.{key}",
        ")",
        "SELECT",
        f"    a.{key},",
        "    a.as_of,",
    ]
    for i, f in enumerate(view.features):
        if isinstance(f, Value):
            expr = f"a.{agg_alias[f.of]}"
        elif isinstance(f, Ratio):
            n, d = f"a.{agg_alias[f.numerator]}", f"a.{agg_alias[f.denominator]}"
            expr = f"CASE WHEN {d} <= 0 THEN NULL ELSE CAST({n} AS DOUBLE) / {d} END"
        elif isinstance(f, DaysSince):
            expr = f"CAST(a.as_of_s - a._t{i} AS DOUBLE) / {DAY}"
        elif isinstance(f, Profile):
            expr = _PROFILE_SQL[f.name]
        else:  # pragma: no cover - every kind is handled above
            raise TypeError(f"unknown feature kind {type(f).__name__}")
        lines.append(f"    {expr} AS {f.name},")
    lines[-1] = lines[-1].rstrip(",")
    lines.append("FROM aggregates AS a")
    if any(isinstance(f, Profile) for f in view.features):
        lines.append(f"LEFT JOIN customers AS cu ON cu.user_token = a.{key}")
    return "\n".join(lines) + "\n"
