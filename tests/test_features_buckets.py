"""The fraud view materialised bucket by bucket (cards split by `hash(card_token) % k`) equals the view
materialised in one pass, row for row; and the rendered SQL keeps every window, aggregate and join
within one key, which is what makes the split exact."""

from __future__ import annotations

import re

import pytest

from cdp.backends import Backends
from cdp.catalog.port import SplitBy
from features.materialize import features_table_name, materialize_view
from features.sample import sample_cards, sample_transactions, write_sample_lake
from features.views import AS_OF_VIEWS, EVENT_VIEWS, split_by, view_sql

EVENTS, CARDS = 24_000, 600


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fraud view built in one pass and in 8 buckets over the same sample lake."""
    from cdp.settings import Settings

    backends = Backends(Settings(home=tmp_path_factory.mktemp("home")))
    write_sample_lake(
        backends, sample_transactions(EVENTS, CARDS, seed=5, days=400), sample_cards(CARDS, seed=5)
    )
    table = features_table_name("fraud_card")
    order = f"SELECT * FROM {table} ORDER BY txn_id"
    catalog = backends.catalog
    catalog.rows_per_bucket = EVENTS  # one pass
    whole = materialize_view(backends, "fraud_card", full=True)
    whole_rows = catalog.query(order).to_pylist()
    catalog.rows_per_bucket = EVENTS // 8  # 8 buckets of ~75 cards
    split = materialize_view(backends, "fraud_card", full=True)
    root = backends.object_store.local_path(split["location"])
    runs = {p.name.split("_")[0] for p in root.rglob("*.parquet")}
    return whole, whole_rows, split, catalog.query(order).to_pylist(), runs


def test_the_bucketed_build_equals_the_single_pass_row_for_row(built):
    whole, whole_rows, split, split_rows, runs = built
    assert whole["rows"] == split["rows"] == EVENTS
    assert runs == {f"b{i}" for i in range(8)}
    assert len(split_rows) == len(whole_rows) == EVENTS
    assert split_rows == whole_rows  # every column, exact: each card's rows are computed the same way


def test_the_sample_gives_every_bucket_cards_with_history(built):
    """The equality above is not trivial: features that read a card's earlier events are non-zero."""
    _, rows, *_ = built
    assert len({r["card_token"] for r in rows}) == CARDS
    with_history = [r for r in rows if r["txn_count_30d"]]
    assert len(with_history) > EVENTS // 2
    assert sum(r["seconds_since_previous"] is not None for r in rows) == EVENTS - CARDS


def test_event_views_split_by_their_key_and_as_of_views_do_not():
    for name, view in EVENT_VIEWS.items():
        assert split_by(name) == SplitBy("transactions", view.key)
    for name in AS_OF_VIEWS:
        assert split_by(name) is None


@pytest.mark.parametrize("name", sorted(EVENT_VIEWS))
def test_every_window_aggregate_and_join_of_an_event_view_stays_within_its_key(name):
    key = EVENT_VIEWS[name].key
    sql = re.sub(r"--[^\n]*", "", view_sql(name))
    overs = re.findall(r"OVER \(([^)]*)\)", sql)
    assert overs and all(o.startswith(f"PARTITION BY {key}") for o in overs)
    groups = re.findall(r"GROUP BY ([\w, ]+)", sql)
    assert groups and all(g.split(",")[0].strip() == key for g in groups)
    tables = set(re.findall(r"(?:FROM|JOIN) (\w+)", sql)) - set(re.findall(r"(\w+) AS \(", sql))
    assert tables == {"transactions", "cards"}
    # the one join to a table outside the CTEs is a lookup of the row's own card
    assert re.findall(r"JOIN cards AS c ON ([^\n]*)", sql) == ["c.card_token = a.card_token"]
    for on in re.findall(r"JOIN first_\w+ AS \w+ ON ([^\n]*)", sql):
        assert re.match(rf"f\d+\.{key} = e\.{key} AND ", on)
