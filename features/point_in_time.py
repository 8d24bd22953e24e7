"""An event view's features for rows that are not (or not all) in the lake: the committed view SQL run over
the rows plus the lake history of their cards.

Batch scoring and evaluation bring transactions from outside the lake (a file) or pick some of the lake's.
Their features must be what training saw: each row's features from its card's events before it. The events
are the card's lake history strictly before the first of its rows in the batch, followed by the batch's
rows. A batch that repeats rows already in the lake (a holdout, the newest month) is therefore never counted
twice: the lake is read only up to the batch's start, card by card.

How (`features_for_rows`): the view's SQL seeded as the incremental refresh seeds it
(`features.incremental.seeded_sql`, the committed SQL with its whole-history values patched): the lake
returns, for the batch's cards only, per-card aggregates of their events before the tail (counts, sums,
the last event, per-value counts, values seen: small results, computed where the events are) and the
tail's events themselves (the view's longest window before the batch's first row, up to each card's first
row); an in-memory DuckDB runs the seeded SQL over the tail plus the batch. The result equals the view over
the whole history (`whole_history=True`, which reads every lake event of the cards and runs the committed
SQL unchanged: the reference, and the tests' check), at the cost of the tail and the batch.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from cdp.catalog.port import Catalog, CatalogError
from cdp.lake.tables import TRANSACTIONS_LAKE_SCHEMA
from features.incremental import aggregate_columns, history_aggregates_sql, seeded_sql
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


def _literal(ts: datetime) -> str:
    return f"TIMESTAMP '{ts:%Y-%m-%d %H:%M:%S}'"  # the lake's ts has whole seconds


def _in_memory(sql: str, tables: dict[str, pa.Table], threads: int = 1) -> pa.Table:
    """`sql` over `tables` (registered by name) in a private in-memory DuckDB."""
    con = duckdb.connect()
    try:
        con.execute(f"SET threads = {int(threads)}")
        for name, table in tables.items():
            con.register(name, table)
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def _lake_query(catalog: Catalog, sql: str) -> pa.Table:
    """`sql` on the lake; on a lake without transactions, over none (same columns and types)."""
    try:
        return catalog.query(sql)
    except CatalogError:
        if any(t.name == "transactions" for t in catalog.tables()):
            raise
        return _in_memory(sql, {"transactions": TRANSACTIONS_LAKE_SCHEMA.empty_table()})


def _months_from(ts: datetime) -> str:
    return f"t.year * 12 + t.month - 1 >= {ts.year * 12 + ts.month - 1}"


def _months_to(ts: datetime) -> str:
    return f"t.year * 12 + t.month - 1 <= {ts.year * 12 + ts.month - 1}"


def lake_tail(catalog: Catalog, firsts: pa.Table, start: datetime) -> pa.Table:
    """The lake's transactions of `firsts`' cards from `start` on, strictly before each card's first row
    (lake schema): read a few thousand cards at a time, bounded by the batch's latest first row."""
    tokens = firsts["card_token"].to_pylist()
    latest = pc.max(firsts["first_ts"]).as_py()
    parts = [TRANSACTIONS_LAKE_SCHEMA.empty_table()]
    for at in range(0, len(tokens), _IN_LIST):
        sql = (
            f"SELECT {', '.join(TRANSACTIONS_LAKE_SCHEMA.names)} FROM transactions AS t "
            f"WHERE t.card_token IN ({_quoted(tokens[at : at + _IN_LIST])}) "
            f"AND t.ts >= {_literal(start)} AND t.ts < {_literal(latest)} AND {_months_from(start)}"
        )
        parts.append(_lake_query(catalog, sql).cast(TRANSACTIONS_LAKE_SCHEMA))
    return _in_memory(
        "SELECT t.* FROM tail AS t JOIN firsts AS f ON f.card_token = t.card_token WHERE t.ts < f.first_ts",
        {"tail": pa.concat_tables(parts), "firsts": firsts},
    )


def lake_history_aggregates(
    catalog: Catalog, view: str, tokens: list[str], start: datetime
) -> dict[str, pa.Table]:
    """Per-card aggregates of the lake's transactions of these cards before `start`, as the seeded view
    SQL joins them (`features.incremental.history_aggregates_sql`): computed on the lake, one query per
    few thousand cards, split by relation here."""
    spec, full = EVENT_VIEWS[view], view_sql(view)
    parts = []
    for at in range(0, len(tokens), _IN_LIST):
        where = f"t.{spec.key} IN ({_quoted(tokens[at : at + _IN_LIST])}) AND t.ts < {_literal(start)}"
        parts.append(
            _lake_query(catalog, history_aggregates_sql(spec, full, f"{where} AND {_months_to(start)}"))
        )
    stacked = pa.concat_tables(parts, promote_options="permissive")
    return {
        name: stacked.filter(pc.equal(stacked["_relation"], name)).select(columns)
        for name, columns in aggregate_columns(spec).items()
    }


def tail_start(firsts: pa.Table, view: str) -> datetime:
    """Where the tail starts: the view's longest window (and a second) before the batch's first row, so
    every window of a batch row lies in the tail."""
    longest = max((w.seconds for w in EVENT_VIEWS[view].windows()), default=0)
    return pc.min(firsts["first_ts"]).as_py().replace(microsecond=0) - timedelta(seconds=longest + 1)


def seeded_features(
    catalog: Catalog, rows: pa.Table, cards: pa.Table, view: str, threads: int = 1
) -> pa.Table:
    """The view's rows over the lake tail of the rows' cards plus `rows`, seeded with the per-card
    aggregates of the older lake history (see the module doc); the tail's rows come out too."""
    spec = EVENT_VIEWS[view]
    firsts = first_events(rows)
    if firsts.num_rows == 0:
        return _in_memory(f"SELECT * FROM ({view_sql(view)}) AS v", {"transactions": rows, "cards": cards})
    start = tail_start(firsts, view)
    tail = lake_tail(catalog, firsts, start)
    aggregates = lake_history_aggregates(catalog, view, firsts["card_token"].to_pylist(), start)
    events = pa.concat_tables([tail, rows])
    sql = seeded_sql(spec, view_sql(view), tail=None, history=None, output=None)
    return _in_memory(sql, {"transactions": events, "cards": cards, **aggregates}, threads)


def features_for_rows(
    catalog: Catalog,
    rows: pa.Table,
    view: str = "fraud_card",
    threads: int = 1,
    *,
    cards: pa.Table | None = None,
    whole_history: bool = False,
) -> pa.Table:
    """Each of `rows`' features (lake transactions schema in, one view row per input row out, in input order):
    its card's lake history before the batch, then the batch's own earlier rows, as the training sets see
    them. `txn_id` must be unique within `rows`. `cards`: the rows' cards as `lake_cards` gives them, when
    already read. `whole_history`: the reference computation (the committed SQL over every lake event of
    the cards; same result, at the cost of the whole history)."""
    rows = rows.select(TRANSACTIONS_LAKE_SCHEMA.names).cast(TRANSACTIONS_LAKE_SCHEMA)
    if pc.count_distinct(rows["txn_id"]).as_py() != rows.num_rows:
        raise ValueError("the rows to score repeat a transaction id")
    if cards is None:
        cards = lake_cards(catalog, pc.unique(rows["card_token"]).to_pylist())
    if whole_history:
        events = pa.concat_tables([lake_history(catalog, rows), rows])
        computed = view_over_events(view, events, cards, threads)
    else:
        computed = seeded_features(catalog, rows, cards, view, threads)
    # keep the batch's rows (the lake's rows are all earlier than their card's first batch row), input order:
    # their positions are found on the three columns that say it, then taken whole
    keys = computed.select(["txn_id", "card_token", "ts"]).append_column(
        "_at", pa.array(range(computed.num_rows), pa.int64())
    )
    positions = _in_memory(
        "SELECT c._at FROM computed AS c JOIN firsts AS f ON f.card_token = c.card_token "
        "JOIN wanted AS w ON w.txn_id = c.txn_id WHERE c.ts >= f.first_ts ORDER BY w._row",
        {
            "computed": keys,
            "firsts": first_events(rows),
            "wanted": pa.table({"txn_id": rows["txn_id"], "_row": pa.array(range(rows.num_rows))}),
        },
    )
    return computed.take(positions["_at"])
