"""The aggregate tables: built in the catalog's engine with figures equal to SQL over the raw lake, skipped
without their sources, never failing the job that refreshes them; their Athena SQL parses as Trino; the
committed QuickSight definition is current and its columns are those the aggregates produce."""

from __future__ import annotations

import json
import logging

import pyarrow as pa
import pytest

from cdp.aggregates.definitions import AGGREGATES, freshness_sql
from cdp.aggregates.refresh import refresh_aggregates, refresh_quietly
from cdp.backends import Backends
from cdp.catalog.dialect import parses_as_trino, to_athena
from dashboards.quicksight import DATASETS, DEFINITION_FILE, definition_json
from monitoring.snapshots.customers import clv_histogram, customer_tables, refresh_customers
from monitoring.snapshots.model_health import refresh_model_health
from tests.dashboard_lake import build_lake
from tests.test_dashboard_app import profiles

QUICKSIGHT_TYPES = {
    "STRING": pa.types.is_string,
    "INTEGER": pa.types.is_integer,
    "BOOLEAN": pa.types.is_boolean,
}


def test_aggregates_hold_the_raw_figures_and_skip_what_has_no_source():
    b = Backends()
    empty = refresh_aggregates(b)
    assert empty.built == {"dash_quarantine": 0} and "dash_fraud_daily" in empty.skipped
    build_lake(b)
    report = refresh_aggregates(b)
    assert not report.failed and report.built["dash_fraud_daily"] > 0
    q = b.catalog.query
    daily = q(
        "SELECT sum(transactions) AS n, sum(frauds) AS f, sum(fraud_amount_cents) AS l FROM dash_fraud_daily"
    )
    raw = q(
        "SELECT count(*) AS n, sum(CASE WHEN is_fraud THEN 1 ELSE 0 END) AS f, "
        "sum(CASE WHEN is_fraud THEN amount_cents ELSE 0 END) AS l FROM transactions"
    )
    assert daily.to_pylist() == raw.to_pylist()
    for table in ("dash_fraud_by_mcc", "dash_fraud_by_state", "dash_fraud_by_hour"):
        assert q(f"SELECT sum(frauds) AS f FROM {table}").to_pylist() == raw.select(["f"]).to_pylist()
    online = q("SELECT sum(transactions) AS n FROM dash_fraud_by_state WHERE state = 'online'")["n"][
        0
    ].as_py()
    assert online == q("SELECT count(*) AS n FROM transactions WHERE channel = 'online'")["n"][0].as_py()
    alerts = q("SELECT sum(alerts) AS a, sum(true_alerts) AS t FROM dash_alerts_daily").to_pylist()[0]
    assert alerts["a"] == q("SELECT count(*) AS n FROM fraud_alerts")["n"][0].as_py()
    reasons = q("SELECT sum(alerts) AS n FROM dash_reason_codes WHERE reason_rank = 1")["n"][0].as_py()
    assert reasons == alerts["a"]  # every alert of the test lake has reason codes
    fresh = {r["table_name"]: r for r in q("SELECT * FROM dash_freshness").to_pylist()}
    assert fresh["transactions"]["row_count"] == 3_000 and fresh["transactions_scored"]["last_scored_at"]


def test_a_failing_refresh_is_one_log_line_and_never_raises(caplog, monkeypatch):
    b = Backends()
    build_lake(b, n=200, scored=0)

    def broken(*args, **kwargs):
        raise RuntimeError("engine down\nsecond line")

    monkeypatch.setattr(b.catalog, "create_table_as", broken)
    with caplog.at_level(logging.WARNING, logger="cdp.aggregates"):
        assert refresh_quietly(b, ("fraud",), after="the batch job") is None
    assert caplog.messages == ["dashboard aggregates not refreshed after the batch job: engine down"]
    monkeypatch.setenv("CDP_DASHBOARD_REFRESH", "false")
    from cdp.settings import get_settings

    get_settings.cache_clear()
    assert refresh_quietly(Backends(), ("fraud",), after="x") is None


@pytest.mark.parametrize("aggregate", AGGREGATES, ids=lambda a: a.name)
def test_the_aggregate_sql_transpiles_to_athena(aggregate):
    assert parses_as_trino(to_athena(aggregate.sql))
    assert "CARDINALITY" in to_athena(aggregate.sql) or "reasons" not in aggregate.sql


def test_freshness_sql_transpiles_and_is_none_without_sources():
    assert freshness_sql(set(), "2020-01-01 00:00:00") is None
    assert parses_as_trino(to_athena(freshness_sql({"transactions", "fraud_alerts"}, "2020-01-01 00:00:00")))


def test_customer_cells_under_the_minimum_keep_no_figure():
    tables = customer_tables(profiles(23), min_customers=5)
    for name in ("dash_clv_bands", "dash_segment_clv"):
        for row in tables[name].to_pylist():
            assert row["suppressed"] == (row["customers"] is None)
            assert row["customers"] is None or row["customers"] >= 5
    assert all(n >= 5 for n in tables["dash_segments"]["customers"].to_pylist())
    assert "user_token" not in {c for t in tables.values() for c in t.column_names}
    hist = clv_histogram(pa.array([1.0] * 3 + [500.0] * 10).to_numpy(), 5)
    assert [c for c in hist["customers"].to_pylist() if c is not None] == [10]


def test_the_quicksight_definition_is_current_and_matches_the_tables():
    assert DEFINITION_FILE.read_text() == definition_json(), "regenerate: python -m dashboards.quicksight"
    doc = json.loads(DEFINITION_FILE.read_text())
    assert doc["DataSource"]["Type"] == "ATHENA"
    b = Backends()
    build_lake(b)
    refresh_aggregates(b)
    refresh_model_health(b)
    refresh_customers(b, profiles())
    schemas = {t.name: t.schema for t in b.catalog.tables()}
    for dataset in doc["DataSets"]:
        (physical,) = dataset["PhysicalTableMap"].values()
        table = physical["RelationalTable"]
        assert table["Schema"] == "cdp" and dataset["Permissions"]
        schema = b.catalog.query(f"SELECT * FROM {table['Name']} LIMIT 0").schema
        columns = [(c["Name"], c["Type"]) for c in table["InputColumns"]]
        assert [n for n, _ in columns] == schema.names, table["Name"]
        for name, qs_type in columns:
            check = QUICKSIGHT_TYPES.get(qs_type)
            assert check is None or check(schema.field(name).type), (table["Name"], name)
        assert table["Name"] in schemas
    assert set(DATASETS) == {d["Name"] for d in doc["DataSets"]}


def test_every_page_query_runs_on_the_built_tables_and_the_raw_twin_gives_the_same_figures():
    from datetime import date

    from dashboards.queries import FraudFilter, customer_queries, fraud_queries, model_queries

    b = Backends()
    build_lake(b)
    refresh_aggregates(b)
    refresh_model_health(b)
    refresh_customers(b, profiles())
    fraud = fraud_queries(FraudFilter(date(2019, 1, 1), date(2019, 12, 31), ("chip", "online")))
    for name, query in {**fraud, **customer_queries(("savers",)), **model_queries()}.items():
        result = b.catalog.query(query.sql)
        assert parses_as_trino(to_athena(query.sql)), name
        if query.raw_sql:
            raw = b.catalog.query(query.raw_sql)
            assert result.to_pylist() == raw.to_pylist(), name


def test_a_page_query_opens_no_view_for_a_column_named_like_a_table():
    b = Backends()
    build_lake(b, n=200, scored=0)
    refresh_aggregates(b, ("fraud",))
    sql = "SELECT CAST(sum(transactions) AS BIGINT) AS transactions FROM dash_fraud_daily"
    con = b.catalog.connect(sql)
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert views == {"dash_fraud_daily"}
    assert b.catalog.query(sql)["transactions"][0].as_py() == 200
    con = b.catalog.connect(
        "SELECT t.ts FROM transactions AS t JOIN dash_fraud_daily AS d ON CAST(t.ts AS DATE) = d.day"
    )
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert views == {"dash_fraud_daily", "transactions"}
