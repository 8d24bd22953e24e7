"""The per-card history aggregates computed on the lake for point-in-time features (one pass) equal those the
incremental refresh computes in its own statement (a join for the last event), nulls included."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from features.fraud import FRAUD_VIEW
from features.incremental import _events_body, _history_ctes, aggregate_columns, history_aggregates_sql
from features.sample import sample_transactions
from features.views import view_sql


def _with_null_last_channels(events: pa.Table) -> pa.Table:
    """The sample's events with the channel of every other card's last event set to null."""
    order = pc.sort_indices(
        events, [("card_token", "ascending"), ("ts", "ascending"), ("event_seq", "ascending")]
    )
    events = events.take(order)
    cards = events["card_token"].to_pylist()
    last = [i for i in range(len(cards)) if i + 1 == len(cards) or cards[i + 1] != cards[i]]
    nulled = set(last[::2])
    channel = [None if i in nulled else c for i, c in enumerate(events["channel"].to_pylist())]
    return events.set_column(
        events.schema.get_field_index("channel"), "channel", pa.array(channel, pa.string())
    )


def _query(sql: str, events: pa.Table) -> pa.Table:
    con = duckdb.connect()
    try:
        con.register("transactions", events)
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def test_the_lake_aggregates_equal_the_refresh_ones_with_null_last_values():
    events = _with_null_last_channels(sample_transactions(3_000, 40, seed=5, days=200))
    full = view_sql("fraud_card")
    cut = "t.ts IS NOT NULL"  # all of it: the nulled last events are in
    stacked = _query(history_aggregates_sql(FRAUD_VIEW, full, cut), events)
    body = _events_body(full)
    history = _history_ctes(FRAUD_VIEW, body + "\n    WHERE " + cut)
    refresh = f"WITH events AS (\n{body}\n),\n{history}dummy AS (SELECT 1)\nSELECT * FROM prefix"
    want = _query(refresh, events)
    columns = aggregate_columns(FRAUD_VIEW)["prefix"]
    got = stacked.filter(pc.equal(stacked["_relation"], "prefix")).select(columns)

    def rows(table: pa.Table) -> list[dict]:
        return sorted(table.select(columns).to_pylist(), key=lambda r: r["card_token"])

    assert len(rows(want)) > 10
    assert rows(got) == rows(want)
    assert any(r["_prev_channel"] is None for r in rows(got))  # a null last value stays null
