"""An event view's features for rows that are not (or not all) in the lake: the committed view SQL, unchanged,
run over the rows plus the lake history of their cards.

Batch scoring and evaluation bring transactions from outside the lake (a file) or pick some of the lake's.
Their features must be what training saw: each row's features from its card's events before it. The events
are the card's lake history strictly before the first of its rows in the batch, followed by the batch's
rows; the view's own SQL (`features/sql/<view>.sql`, what `compute_view` and the training sets run) computes
every row's features over them in an in-memory DuckDB. A batch that repeats rows already in the lake (a
holdout, the newest month) is therefore never counted twice: the lake is read only up to the batch's start,
card by card.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from cdp.catalog.port import Catalog, CatalogError
from cdp.lake.tables import TRANSACTIONS_LAKE_SCHEMA
from features.views import EVENT_VIEWS, view_sql

CARD_COLUMNS = ("card_token", "acct_open_date", "credit_limit", "has_chip")
_CARDS_SCHEMA = pa.schema(
    [("card_token", pa.string()), ("acct_open_date", pa.date32()), ("credit_limit", pa.int64()),
     ("has_chip", pa.bool_())]
)  # fmt: skip
_IN_LIST = 2_000  # card tokens per lake query


def first_events(rows: pa.Table) -> pa.Table:
    """(card_token, first_ts): each card's earliest row in the batch."""
    grouped = rows.select(["card_token", "ts"]).group_by("card_token").aggregate([("ts", "min")])
    return grouped.rename_columns(["card_token", "first_ts"])


def _quoted(tokens: list[str]) -> str:
    return ", ".join("'" + t.replace("'", "''") + "'" for t in tokens)


def lake_history(catalog: Catalog, rows: pa.Table) -> pa.Table:
    """The lake's transactions of the rows' cards strictly before each card's first row (lake schema).

    Read through the catalog port a few thousand cards at a time, bounded by the batch's latest first row,
    then cut card by card."""
    firsts = first_events(rows)
    if firsts.num_rows == 0:
        return TRANSACTIONS_LAKE_SCHEMA.empty_table()
    tokens = firsts["card_token"].to_pylist()
    latest = pc.max(firsts["first_ts"]).as_py()
    parts = []
    for start in range(0, len(tokens), _IN_LIST):
        chunk = tokens[start : start + _IN_LIST]
        sql = (
            f"SELECT {', '.join(TRANSACTIONS_LAKE_SCHEMA.names)} FROM transactions "
            f"WHERE card_token IN ({_quoted(chunk)}) AND ts < TIMESTAMP '{latest:%Y-%m-%d %H:%M:%S}'"
        )
        try:
            parts.append(catalog.query(sql).cast(TRANSACTIONS_LAKE_SCHEMA))
        except CatalogError:
            if not any(t.name == "transactions" for t in catalog.tables()):
                return TRANSACTIONS_LAKE_SCHEMA.empty_table()  # an empty lake: no history
            raise
    history = pa.concat_tables(parts)
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        con.register("history", history)
        con.register("firsts", firsts)
        return con.sql(
            "SELECT h.* FROM history AS h JOIN firsts AS f ON f.card_token = h.card_token "
            "WHERE h.ts < f.first_ts"
        ).to_arrow_table()
    finally:
        con.close()


def lake_cards(catalog: Catalog, card_tokens: list[str]) -> pa.Table:
    """The view's card attributes of these cards from the lake's `cards` table (empty without one)."""
    if not card_tokens:
        return _CARDS_SCHEMA.empty_table()
    parts = []
    for start in range(0, len(card_tokens), _IN_LIST):
        chunk = card_tokens[start : start + _IN_LIST]
        try:
            found = catalog.query(
                f"SELECT {', '.join(CARD_COLUMNS)} FROM cards WHERE card_token IN ({_quoted(chunk)})"
            )
        except CatalogError:
            return _CARDS_SCHEMA.empty_table()
        parts.append(found.cast(_CARDS_SCHEMA))
    return pa.concat_tables(parts)


def view_over_events(view: str, events: pa.Table, cards: pa.Table, threads: int = 1) -> pa.Table:
    """The view's committed SQL over `events` (lake transactions schema) as its `transactions` table and
    `cards` as its `cards` table, in a private in-memory DuckDB; every event's features, in event order."""
    if view not in EVENT_VIEWS:
        raise ValueError(f"{view} is not an event view")
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {int(threads)}")
        con.register("transactions", events)
        con.register("cards", cards)
        return con.sql(
            f"SELECT v.* FROM (\n{view_sql(view)}) AS v ORDER BY v.ts, v.event_seq, v.txn_id"
        ).to_arrow_table()
    finally:
        con.close()


def features_for_rows(
    catalog: Catalog, rows: pa.Table, view: str = "fraud_card", threads: int = 1
) -> pa.Table:
    """Each of `rows`' features (lake transactions schema in, one view row per input row out, in input order):
    its card's lake history before the batch, then the batch's own earlier rows, as the training sets see
    them. `txn_id` must be unique within `rows`."""
    rows = rows.select(TRANSACTIONS_LAKE_SCHEMA.names).cast(TRANSACTIONS_LAKE_SCHEMA)
    if pc.count_distinct(rows["txn_id"]).as_py() != rows.num_rows:
        raise ValueError("the rows to score repeat a transaction id")
    history = lake_history(catalog, rows)
    cards = lake_cards(catalog, pc.unique(rows["card_token"]).to_pylist())
    events = pa.concat_tables([history, rows])
    computed = view_over_events(view, events, cards, threads)
    # keep the batch's rows (history rows are all earlier than their card's first batch row), input order
    firsts = first_events(rows)
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        con.register("computed", computed)
        con.register("firsts", firsts)
        con.register("wanted", pa.table({"txn_id": rows["txn_id"], "_row": pa.array(range(rows.num_rows))}))
        return con.sql(
            "SELECT c.* FROM computed AS c JOIN firsts AS f ON f.card_token = c.card_token "
            "JOIN wanted AS w ON w.txn_id = c.txn_id WHERE c.ts >= f.first_ts ORDER BY w._row"
        ).to_arrow_table()
    finally:
        con.close()
