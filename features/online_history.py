"""What a card's events before its longest window leave in its online state, computed by the engine.

An event older than the card's last event minus the view's longest window is gone from the state's event
lists: all it left is its share of the running history aggregates (count, sum and sum of squares of the
z-score column), the values it was the first to show (first-seen order matters) and its counts per value
(in first-seen order too). `prev` holds the card's last event, which is inside the window. So instead of
replaying those events one by one, one SQL query per bucket of cards gives these aggregates per card
(`history_sql`); the state is seeded with them and only the events inside the window are replayed through
the online updater (`window_events_sql`).

Both queries are hash aggregates and joins, no sort of the history: a card's events are told apart and
ordered by `EVENT_KEY` (epoch second and `event_seq` packed in one BIGINT, as the offline SQL does; a
card's events have distinct `event_seq`s, so the `txn_id` tie-break never decides). The SQL is written in
DuckDB's dialect and only uses what Athena (Trino) also has: `Catalog.query` runs it on either engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from features.columns import COLUMNS, Kind

# a card's events in event order (ts, event_seq, txn_id), packed: exact while 0 <= event_seq < 2^31
EVENT_KEY = "CAST(epoch(t.ts) AS BIGINT) * 2147483648 + t.event_seq"
# one result column per value kind, so each value comes back with the type the per-event path sees
_SLOTS: dict[Kind, tuple[str, str]] = {
    "int": ("v_int", "BIGINT"),
    "str": ("v_str", "VARCHAR"),
    "bool": ("v_bool", "BOOLEAN"),
}
_HIST = -1  # `k` of the row that carries a card's history aggregates


@dataclass
class CardHistory:
    """The aggregates a card's events before its longest window leave in its state."""

    hist: list[int] = field(default_factory=lambda: [0, 0, 0])  # n, sum, sum of squares (z-score column)
    seen: dict[str, dict[Any, None]] = field(default_factory=dict)  # per column, in first-seen order
    share: dict[str, dict[Any, int]] = field(default_factory=dict)  # per column, in first-seen order


def _bucket_sql(bound: str, bucket: str) -> str:
    """The bucket's transactions before `bound`."""
    return f"SELECT * FROM transactions WHERE ts < TIMESTAMP '{bound}' AND {bucket}"


def _bucket_events(bound: str, bucket: str, longest: int, select: str, inside: bool) -> str:
    """`select` (over `t`, the bucket's transactions before `bound`) of the events inside (`inside`) or
    before the longest window (`longest` seconds) ending at their card's last event before `bound`."""
    cuts = (
        f"SELECT card_token, max(ts) - INTERVAL '{int(longest)}' SECOND AS cut "
        f"FROM ({_bucket_sql(bound, bucket)}) AS b GROUP BY card_token"
    )
    return (
        f"SELECT {select} FROM ({_bucket_sql(bound, bucket)}) AS t JOIN ({cuts}) AS w "
        f"ON t.card_token = w.card_token WHERE t.ts {'>=' if inside else '<'} w.cut"
    )


def window_events_sql(bound: str, bucket: str, fields: list[str], longest: int) -> str:
    """The bucket's events inside each card's longest window (`longest` seconds, ending at the card's
    last event before `bound`) with the record `fields`, in the view's event order per card."""
    select = ", ".join(f"t.{f}" for f in fields)
    events = _bucket_events(bound, bucket, longest, select, inside=True)
    return f"{events} ORDER BY t.card_token, t.ts, t.event_seq, t.txn_id"


def history_sql(bound: str, bucket: str, plan: Any, longest: int) -> str:
    """Per card of the bucket, the aggregates of its events before its longest window: one row (`k` =
    -1) with their count and the sums of the z-score column (exact: DECIMAL(38, 0)), and per tracked
    column (`k` = its index in `tracked_columns(plan)`) one row per value with the first event showing it
    (`first`, its `EVENT_KEY`) and how many events show it (`n`)."""
    tracked = tracked_columns(plan)
    z = COLUMNS[plan.zscore].sql if plan.zscore is not None else "0"
    # the columns' SQL reads fields of `transactions` by name; only `card_token` is also in `w`
    exprs = [f"{COLUMNS[c].sql} AS c{i}" for i, c in enumerate(tracked)]
    select = ", ".join(["t.card_token", f"{EVENT_KEY} AS ek", f"{z} AS z", *exprs])
    old = _bucket_events(bound, bucket, longest, select, inside=False)
    kinds = list(_SLOTS)

    def slots(kind: Kind | None, value: str) -> str:
        return ", ".join(
            f"{value if k == kind else f'CAST(NULL AS {_SLOTS[k][1]})'} AS {_SLOTS[k][0]}" for k in kinds
        )

    dec = "CAST(z AS DECIMAL(38, 0))"
    nulls = "CAST(NULL AS DECIMAL(38, 0)) AS s, CAST(NULL AS DECIMAL(38, 0)) AS q"
    parts = [
        f"SELECT card_token, {_HIST} AS k, {slots(None, '')}, CAST(0 AS BIGINT) AS first, count(*) AS n, "
        f"sum({dec}) AS s, sum({dec} * {dec}) AS q FROM old GROUP BY card_token"
    ]
    parts += [
        f"SELECT card_token, {i} AS k, {slots(COLUMNS[c].kind, f'c{i}')}, min(ek) AS first, "
        f"count(*) AS n, {nulls} FROM old WHERE c{i} IS NOT NULL GROUP BY card_token, c{i}"
        for i, c in enumerate(tracked)
    ]
    union = " UNION ALL ".join(parts)
    return f"WITH old AS ({old}) SELECT * FROM ({union}) AS h ORDER BY card_token, k, first"


def tracked_columns(plan: Any) -> list[str]:
    """The columns whose values the state tracks: first-seen sets, then shares (each once)."""
    return list(dict.fromkeys([*plan.first_seen, *plan.shares]))


def card_histories(table: pa.Table, plan: Any) -> Iterator[tuple[str, CardHistory]]:
    """`history_sql`'s result (ordered by card, `k`, `first`) as one `CardHistory` per card."""
    tracked = tracked_columns(plan)
    seen_cols, share_cols = set(plan.first_seen), set(plan.shares)
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    slot_of = [_SLOTS[COLUMNS[c].kind][0] for c in tracked]
    card: str | None = None
    h = CardHistory()
    for row, key in enumerate(cols["card_token"]):
        if key != card:
            if card is not None:
                yield card, h
            card, h = key, _empty(plan)
        k = cols["k"][row]
        if k == _HIST:
            s, q = cols["s"][row], cols["q"][row]
            h.hist = [int(cols["n"][row]), 0 if s is None else int(s), 0 if q is None else int(q)]
            continue
        column = tracked[k]
        value = cols[slot_of[k]][row]
        if column in seen_cols:
            h.seen[column][value] = None
        if column in share_cols:
            h.share[column][value] = int(cols["n"][row])
    if card is not None:
        yield card, h


def _empty(plan: Any) -> CardHistory:
    return CardHistory(seen={c: {} for c in plan.first_seen}, share={c: {} for c in plan.shares})


def timestamp_literal(t: datetime) -> str:
    """`t` as the text of a SQL TIMESTAMP literal."""
    return t.isoformat(sep=" ")
