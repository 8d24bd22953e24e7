"""Piecewise `create_table_as` (`SplitBy`): the local engine runs the query per bucket of the source's
key values and gets the same table as one run; a failed bucket leaves the old table; Athena stays one
UNLOAD."""

from __future__ import annotations

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from cdp.catalog.athena import GlueAthenaCatalog
from cdp.catalog.local import DuckDbCatalog
from cdp.catalog.port import CatalogError, SplitBy, TableInfo

EVENTS = pa.schema(
    [("txn_id", pa.string()), ("card", pa.string()), ("seq", pa.int64()), ("amount", pa.int64())]
    + [("year", pa.int32()), ("month", pa.int32())]
)
SPLIT = SplitBy("events", "card")
# A running sum and a lag per card, and a per-card aggregate joined back: all stay within one card.
PER_CARD_SQL = """
WITH totals AS (SELECT card, count(*) AS n_card FROM events GROUP BY card)
SELECT e.txn_id, e.card,
    sum(e.amount) OVER (PARTITION BY e.card ORDER BY e.seq ROWS UNBOUNDED PRECEDING) AS running,
    lag(e.amount) OVER (PARTITION BY e.card ORDER BY e.seq) AS previous,
    t.n_card, e.year, e.month
FROM events AS e JOIN totals AS t ON t.card = e.card
"""


def _catalog(tmp_path, rows_per_bucket: int) -> DuckDbCatalog:
    cat = DuckDbCatalog(
        tmp_path / "state" / "catalog.json",
        resolve=lambda uri: tmp_path / "lake" / uri[5:],
        rows_per_bucket=rows_per_bucket,
    )
    rows = [
        {"txn_id": f"t{i:05d}", "card": f"c{i % 37:02d}", "seq": i, "amount": (i * 7919) % 1000 - 100}
        | {"year": 2019 + i % 2, "month": 1 + i % 3}
        for i in range(2_000)
    ]
    for (year, month), part in _by_partition(rows).items():
        folder = tmp_path / "lake" / "bucket" / "events" / f"year={year}" / f"month={month}"
        folder.mkdir(parents=True)
        table = pa.Table.from_pylist(part, EVENTS).drop_columns(["year", "month"])
        pq.write_table(table, folder / "part-0.parquet")
    cat.register_table(TableInfo("events", "s3://bucket/events/", EVENTS, ("year", "month")))
    return cat


def _by_partition(rows: list[dict]) -> dict[tuple[int, int], list[dict]]:
    parts: dict[tuple[int, int], list[dict]] = {}
    for r in rows:
        parts.setdefault((r["year"], r["month"]), []).append(r)
    return parts


def _bucket_of(card: str, k: int) -> int:
    return int(duckdb.connect().execute(f"SELECT hash('{card}') % {k}").fetchall()[0][0])


def _rows(cat: DuckDbCatalog, name: str) -> list[dict]:
    return cat.query(f"SELECT * FROM {name} ORDER BY txn_id").to_pylist()


def test_bucket_count_follows_the_source_row_count(tmp_path):
    cat = DuckDbCatalog(tmp_path / "catalog.json", resolve=lambda uri: None, rows_per_bucket=1_000)
    assert [cat.bucket_count(n) for n in (0, 1, 1_000, 1_001, 4_500)] == [1, 1, 1, 2, 5]


def test_a_split_build_equals_the_single_run_row_for_row(tmp_path):
    cat = _catalog(tmp_path, rows_per_bucket=300)  # 2,000 rows -> 7 buckets
    whole = TableInfo("whole", "s3://bucket/whole/", pa.schema([]), ("year", "month"))
    split = TableInfo("split", "s3://bucket/split/", pa.schema([]), ("year", "month"))
    assert cat.create_table_as(whole, PER_CARD_SQL) == 2_000
    assert cat.create_table_as(split, PER_CARD_SQL, SPLIT) == 2_000
    assert _rows(cat, "split") == _rows(cat, "whole")
    runs = {p.name.split("_")[0] for p in (tmp_path / "lake" / "bucket" / "split").rglob("*.parquet")}
    assert runs == {f"b{i}" for i in range(7)}  # every bucket wrote files of its own
    # the per-card aggregate proves no card was cut in two: each row sees its card's full count
    assert {r["n_card"] for r in _rows(cat, "split")} == {54, 55}
    assert [t.schema.names for t in cat.tables() if t.name == "split"] == [
        ["txn_id", "card", "running", "previous", "n_card", "year", "month"]
    ]


def test_a_split_build_replaces_the_table_and_leaves_no_staging(tmp_path):
    cat = _catalog(tmp_path, rows_per_bucket=500)
    target = TableInfo("split", "s3://bucket/split/", pa.schema([]), ("year", "month"))
    assert cat.create_table_as(target, PER_CARD_SQL + " WHERE e.amount >= 0", SPLIT) < 2_000
    assert cat.create_table_as(target, PER_CARD_SQL, SPLIT) == 2_000  # replaced, not appended
    assert len(_rows(cat, "split")) == 2_000
    assert not (tmp_path / "lake" / "bucket" / "split.new").exists()


def test_an_unpartitioned_split_build_writes_one_file_per_bucket(tmp_path):
    cat = _catalog(tmp_path, rows_per_bucket=1_000)
    target = TableInfo("flat", "s3://bucket/flat/", pa.schema([]), ())
    assert cat.create_table_as(target, PER_CARD_SQL, SPLIT) == 2_000
    names = sorted(p.name for p in (tmp_path / "lake" / "bucket" / "flat").glob("*.parquet"))
    assert names == ["part-0.parquet", "part-1.parquet"]
    assert len({r["txn_id"] for r in _rows(cat, "flat")}) == 2_000


def test_a_bucket_that_fails_leaves_the_old_table_whole(tmp_path):
    cat = _catalog(tmp_path, rows_per_bucket=500)  # 4 buckets
    target = TableInfo("split", "s3://bucket/split/", pa.schema([]), ("year", "month"))
    cat.create_table_as(target, PER_CARD_SQL, SPLIT)
    before = _rows(cat, "split")
    # a card of the last bucket fails, so the earlier buckets have written their files by then
    last = next(f"c{i:02d}" for i in range(37) if _bucket_of(f"c{i:02d}", 4) == 3)
    failing = PER_CARD_SQL.replace(
        "e.txn_id, e.card,",
        f"e.txn_id, e.card, CASE WHEN e.card = '{last}' THEN error('bucket failed') END AS boom,",
    )
    with pytest.raises(CatalogError, match="bucket failed"):
        cat.create_table_as(target, failing, SPLIT)
    assert _rows(cat, "split") == before
    assert not (tmp_path / "lake" / "bucket" / "split.new").exists()


def test_splitting_by_an_unknown_table_or_column_is_refused(tmp_path):
    cat = _catalog(tmp_path, rows_per_bucket=500)
    target = TableInfo("split", "s3://bucket/split/", pa.schema([]), ("year", "month"))
    with pytest.raises(CatalogError, match="unknown table nowhere"):
        cat.create_table_as(target, PER_CARD_SQL, SplitBy("nowhere", "card"))
    with pytest.raises(CatalogError, match="no such column"):
        cat.create_table_as(target, PER_CARD_SQL, SplitBy("events", "user"))
    assert not (tmp_path / "lake" / "bucket" / "split").exists()


@mock_aws
def test_athena_accepts_a_split_and_still_sends_one_unload():
    region = "eu-west-1"
    glue = boto3.client("glue", region_name=region)
    athena = boto3.client("athena", region_name=region)
    cat = GlueAthenaCatalog(glue, athena, "cdp", "s3://results/athena/", poll_seconds=0.01)
    info = TableInfo("split", "s3://lake/split/", EVENTS, ("year", "month"))
    cat.create_table_as(info, PER_CARD_SQL, SPLIT)
    sent = [
        athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"]
        for q in athena.list_query_executions()["QueryExecutionIds"]
    ]
    unloads = [q for q in sent if q.startswith("UNLOAD")]
    assert len(unloads) == 1 and "hash(" not in unloads[0].lower()
    location = glue.get_table(DatabaseName="cdp", Name="split")["Table"]["StorageDescriptor"]["Location"]
    assert location.startswith("s3://lake/split/run=")
