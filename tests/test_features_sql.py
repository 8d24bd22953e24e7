"""The committed SQL files are what the definitions render, their Athena translation parses as Trino, and
the MCC group table gives the same group in SQL and in Python."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot

from cdp.catalog.dialect import parses_as_trino, to_athena
from features.mcc import group_names, mcc_group, mcc_group_sql
from features.views import ALL_VIEWS, AS_OF_VIEWS, EVENT_VIEWS, rendered_sql, sql_path, view_sql


@pytest.mark.parametrize("view", ALL_VIEWS)
@pytest.mark.parametrize("dialect", ["duckdb", "athena"])
def test_committed_sql_is_not_stale(view, dialect):
    assert sql_path(view, dialect).read_text() == rendered_sql(view, dialect), (
        f"{sql_path(view, dialect).name} is stale: run `python -m features`"
    )


@pytest.mark.parametrize("view", sorted(EVENT_VIEWS))
def test_athena_translation_parses_as_trino_and_keeps_every_feature(view):
    athena = to_athena(view_sql(view))
    assert parses_as_trino(athena)
    assert parses_as_trino(sql_path(view, "athena").read_text())
    selected = [e.alias_or_name for e in sqlglot.parse_one(athena, read="trino").expressions]
    assert selected[-len(EVENT_VIEWS[view].features) :] == EVENT_VIEWS[view].feature_names
    assert "CARDINALITY(" in athena and "TO_UNIXTIME(" in athena  # DuckDB-only functions were translated


@pytest.mark.parametrize("view", sorted(AS_OF_VIEWS))
def test_as_of_view_translation_parses_as_trino_and_keeps_every_feature(view):
    athena = to_athena(view_sql(view))
    assert parses_as_trino(athena) and parses_as_trino(sql_path(view, "athena").read_text())
    selected = [e.alias_or_name for e in sqlglot.parse_one(athena, read="trino").expressions]
    assert selected == [AS_OF_VIEWS[view].key, "as_of", *AS_OF_VIEWS[view].feature_names]
    assert "TO_UNIXTIME(" in athena and "SPLIT_PART(" in athena.upper()


def test_a_broken_translation_is_caught():
    assert not parses_as_trino("SELECT errors && ARRAY['Bad CVV'] FROM t")


def test_mcc_groups_agree_between_sql_and_python_for_every_code():
    con = duckdb.connect()
    sql_groups = con.execute(
        f"SELECT mcc, {mcc_group_sql('mcc')} FROM range(10000) AS r(mcc) ORDER BY mcc"
    ).fetchall()
    assert [g for _, g in sql_groups] == [mcc_group(c) for c in range(10_000)]
    assert (
        mcc_group(5411) == "grocery"
        and mcc_group(3640) == "travel"
        and mcc_group(5732) == "electronics_and_digital"
    )
    assert mcc_group(None) is None
    assert set(mcc_group(c) for c in range(10_000)) == set(group_names())


def test_high_risk_flag_matches_the_generator_group_on_both_paths():
    from cdp.synth.mcc import catalogue
    from features.columns import COLUMNS, HIGH_RISK_MCCS

    cat = catalogue()
    generator = {int(c) for c in cat.codes[cat.group == cat.group_index("high_risk")]}
    assert set(HIGH_RISK_MCCS) == generator
    column = COLUMNS["is_high_risk_mcc"]
    codes = [int(c) for c in cat.codes] + [6011, None]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (mcc SMALLINT)")
    con.executemany("INSERT INTO t VALUES (?)", [[c] for c in codes])
    sql = [r[0] for r in con.execute(f"SELECT {column.sql} FROM t").fetchall()]
    python = [column.value({"mcc": c}) for c in codes]
    assert sql == python
    assert sum(python) == len(generator) and python[-2:] == [False, False]


def test_event_view_sorts_each_key_once_per_ordering_not_once_per_window():
    """Every window rides on two sorts of the key's events (by second, and in event order) plus one per
    `PriorShare` column; no feature adds a RANGE frame of its own (those made the build slow)."""
    import re

    from features.spec import PriorShare

    view = EVENT_VIEWS["fraud_card"]
    sql = view_sql(view.name)
    specs = set(re.findall(r"OVER \((PARTITION BY [^)]*?ORDER BY [a-z_, ]+?)(?: ROWS| RANGE|\))", sql))
    shares = [f.column for f in view.features if isinstance(f, PriorShare)]
    assert specs == {
        "PARTITION BY card_token ORDER BY epoch_s",
        "PARTITION BY card_token ORDER BY epoch_s, event_seq, txn_id",
        *(f"PARTITION BY card_token, {c} ORDER BY epoch_s, event_seq, txn_id" for c in shares),
    }
    assert len(view.windows()) == 4 and sql.count(" RANGE BETWEEN ") == len(view.windows())
