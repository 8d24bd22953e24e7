"""Month-by-month refresh of the aggregate tables: after new files land (in old months and new ones), a file
is rewritten or deleted, every table equals a full rebuild from the whole lake; only the changed months are
recomputed, nothing is done when nothing changed, and without a valid watermark the table is rebuilt in
full."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from cdp.aggregates.definitions import AGGREGATES, by_name, freshness_sql
from cdp.aggregates.refresh import refresh_aggregates
from cdp.aggregates.watermarks import list_months, watermark_uri
from cdp.backends import Backends
from cdp.lake.tables import TRANSACTIONS
from cdp.lake.writer import LakeWriter
from inference.streaming.scored import FRAUD_ALERTS, TRANSACTIONS_SCORED, alerts_table, scored_table
from tests.dashboard_lake import build_lake, transactions

TRANSACTION_AGGREGATES = [a.name for a in AGGREGATES if a.group == "fraud"]
STREAM_AGGREGATES = [a.name for a in AGGREGATES if a.group == "stream"]


def _sorted(table: pa.Table) -> list[dict]:
    rows = table.to_pylist()
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))


def assert_equal_to_full_rebuild(b: Backends) -> None:
    """Every aggregate table built holds exactly what its SQL gives over the whole lake now."""
    built = {t.name for t in b.catalog.tables()}
    assert "dash_fraud_daily" in built
    for aggregate in (a for a in AGGREGATES if a.name in built):
        table = b.catalog.query(f"SELECT * FROM {aggregate.name}")
        expected = b.catalog.query(aggregate.sql)
        assert table.schema.names == expected.schema.names, aggregate.name
        assert _sorted(table) == _sorted(expected), aggregate.name
    present = {t.name for t in b.catalog.tables()}
    columns = "table_name, row_count, first_event, last_event, last_scored_at"
    freshness = b.catalog.query(f"SELECT {columns} FROM dash_freshness")
    expected = b.catalog.query(f"SELECT {columns} FROM ({freshness_sql(present, '2026-01-01 00:00:00')})")
    assert _sorted(freshness) == _sorted(expected)


def land(b: Backends, rows: list[dict], chunk: str, scored_version: int | None = None) -> None:
    """Land transaction rows as the stream does (one file per partition), and score them when asked."""
    writer = LakeWriter(b.object_store, b.settings.lake_bucket)
    writer.write_chunk(TRANSACTIONS, pa.Table.from_pylist(rows, schema=TRANSACTIONS.schema), chunk)
    if scored_version is None:
        return
    probabilities = [0.9 if r["is_fraud"] or i % 7 == 0 else 0.1 for i, r in enumerate(rows)]
    reasons = [[("velocity_24h", 0.7)] if p >= 0.5 else [] for p in probabilities]
    table = scored_table(
        rows, [{"velocity_24h": 1.0}] * len(rows), probabilities, reasons, 0.5, "cdp-fraud", scored_version,
        datetime(2026, 2, 1),
    )  # fmt: skip
    writer.write_chunk(TRANSACTIONS_SCORED, table, chunk)
    writer.write_chunk(FRAUD_ALERTS, alerts_table(table), chunk)


def test_new_files_refresh_only_their_months_and_equal_a_full_rebuild():
    b = Backends()
    build_lake(b, n=2_000, scored=800)
    first = refresh_aggregates(b)
    assert set(first.modes.values()) == {"full"} and not first.failed
    again = refresh_aggregates(b)
    assert set(again.modes.values()) == {"unchanged"}
    assert not set(again.built) & set(again.modes)  # nothing rebuilt

    # the stream lands rows in the last month already there and in a new month
    late = transactions(300, seed=11, start=datetime(2019, 9, 20), days=25)
    land(b, late, "stream-0-100", scored_version=3)
    months = {(r["ts"].year, r["ts"].month) for r in late}
    assert months == {(2019, 9), (2019, 10)}
    report = refresh_aggregates(b)
    assert not report.failed
    assert all(report.modes[name] == "2 months" for name in TRANSACTION_AGGREGATES + STREAM_AGGREGATES)
    assert_equal_to_full_rebuild(b)
    fresh = {r["table_name"]: r for r in b.catalog.query("SELECT * FROM dash_freshness").to_pylist()}
    assert fresh["transactions"]["row_count"] == 2_300

    # only the fraud group after a landing: the stream group's tables stay as they were until it runs
    land(b, transactions(50, seed=12, start=datetime(2019, 10, 20), days=5), "stream-1-200")
    fraud_only = refresh_aggregates(b, ("fraud",))
    assert {fraud_only.modes[n] for n in TRANSACTION_AGGREGATES} == {"1 months"}
    assert set(fraud_only.modes) == set(TRANSACTION_AGGREGATES)
    assert_equal_to_full_rebuild(b)


def test_a_rewritten_or_deleted_file_is_recomputed_in_its_month():
    b = Backends()
    build_lake(b, n=1_500, scored=500)
    refresh_aggregates(b)
    rows = transactions(200, seed=21, start=datetime(2019, 7, 3), days=10)
    land(b, rows, "stream-0-7", scored_version=2)
    refresh_aggregates(b)
    # the same batch landed again after a crash: the file is replaced with other rows (fewer of them)
    land(b, rows[:120], "stream-0-7", scored_version=2)
    report = refresh_aggregates(b)
    assert report.modes["dash_fraud_daily"] == "1 months"
    assert_equal_to_full_rebuild(b)
    # a whole month's files deleted (e.g. an erasure rewrite that removed them)
    bucket = b.settings.lake_bucket
    listing = list_months(b.object_store, TRANSACTIONS.location(bucket))
    for info in listing.objects[(2019, 6)]:
        b.object_store.delete(info.uri)
    report = refresh_aggregates(b, ("fraud",))
    assert report.modes["dash_fraud_by_mcc"] == "1 months"
    assert_equal_to_full_rebuild(b)
    days = b.catalog.query("SELECT count(*) AS n FROM dash_fraud_daily WHERE day < DATE '2019-07-01'")
    assert days["n"][0].as_py() == 0


def test_without_a_valid_watermark_the_table_is_rebuilt_in_full(monkeypatch):
    b = Backends()
    build_lake(b, n=800, scored=300)
    refresh_aggregates(b)
    bucket = b.settings.lake_bucket
    b.object_store.delete(watermark_uri(bucket, "dash_fraud_daily"))
    b.object_store.put_bytes(watermark_uri(bucket, "dash_fraud_by_mcc"), b"{not json")
    land(b, transactions(40, seed=31, start=datetime(2019, 8, 1), days=3), "stream-2-1")
    report = refresh_aggregates(b, ("fraud",))
    assert report.modes["dash_fraud_daily"] == "full" and report.modes["dash_fraud_by_mcc"] == "full"
    assert report.modes["dash_fraud_by_state"] == "1 months"
    # a changed definition: its old watermark no longer applies
    daily = by_name()["dash_fraud_daily"]
    changed = type(daily)(daily.name, daily.sources, daily.template + " ", daily.group, daily.time_column)
    monkeypatch.setattr("cdp.aggregates.refresh.AGGREGATES", (changed,))
    land(b, transactions(10, seed=32, start=datetime(2019, 8, 5), days=1), "stream-2-2")
    assert refresh_aggregates(b, ("fraud",)).modes == {"dash_fraud_daily": "full"}
    assert refresh_aggregates(b, ("fraud",), full=True).modes == {"dash_fraud_daily": "full"}
    monkeypatch.undo()
    refresh_aggregates(b)
    assert_equal_to_full_rebuild(b)


@pytest.mark.parametrize("setting", ["CDP_DASHBOARD_INCREMENTAL_MAX_MB", "CDP_DASHBOARD_INCREMENTAL"])
def test_too_many_changed_bytes_or_incremental_off_means_a_full_rebuild(monkeypatch, setting):
    from cdp.settings import get_settings

    b = Backends()
    build_lake(b, n=600, scored=0)
    refresh_aggregates(b)
    monkeypatch.setenv(setting, "0.01" if setting.endswith("_MB") else "false")
    get_settings.cache_clear()
    b = Backends()
    land(b, transactions(2_000, seed=41, start=datetime(2019, 9, 1), days=20), "stream-3-1")
    listing = list_months(b.object_store, TRANSACTIONS.location(b.settings.lake_bucket))
    assert listing.size({(2019, 9)}) > 10_000
    report = refresh_aggregates(b, ("fraud",))
    assert {report.modes[n] for n in TRANSACTION_AGGREGATES} == {"full"}
    assert_equal_to_full_rebuild(b)


def test_a_replaced_table_drops_its_previous_files_but_not_a_concurrent_writers(monkeypatch):
    from cdp.aggregates import incremental
    from cdp.aggregates.locations import aggregate_location

    b = Backends()
    build_lake(b, n=300, scored=0)
    refresh_aggregates(b, ("fraud",))  # full: the table's files are directly in its folder
    base = aggregate_location(b.settings.lake_bucket, "dash_fraud_daily")
    rows = b.catalog.query("SELECT * FROM dash_fraud_daily")
    b.object_store.put_bytes(f"{base}run=concurrent/part-0.parquet", b"a concurrent refresh's file")
    incremental.replace_table(b, "dash_fraud_daily", rows)
    files = [o.uri[len(base) :] for o in b.object_store.list(base)]
    assert len(files) == 2 and "run=concurrent/part-0.parquet" in files  # the full build's file is gone
    assert b.catalog.query("SELECT count(*) AS n FROM dash_fraud_daily")["n"][0].as_py() == rows.num_rows
    monkeypatch.setattr(incremental, "ORPHAN_AGE", incremental.timedelta(seconds=-60))  # now old enough
    incremental.replace_table(b, "dash_fraud_daily", rows)
    assert len(list(b.object_store.list(base))) == 1
    assert _sorted(b.catalog.query("SELECT * FROM dash_fraud_daily")) == _sorted(rows)
