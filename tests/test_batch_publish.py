"""Partition-sorted staging and the Arrow publish: the lake they produce equals what the earlier DuckDB
publish produced from the same staged rows; staged chunks are read by band; re-publishing is idempotent."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import boto3
import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from cdp.backends import Backends
from cdp.batch.job import JOB, run_batch
from cdp.lake import tables
from cdp.lake.publish import STAGED_FORMAT, _Staged, publish_partitioned, staged_chunk_bytes, staged_column
from cdp.lake.tables import LakeTable
from cdp.objectstore.port import ObjectStore
from cdp.objectstore.s3 import S3ObjectStore
from cdp.synth.generator import generate


def reference_publish(
    store: ObjectStore, table: LakeTable, bucket: str, staged_parquet: Sequence[Path], label: str, where: str
) -> int:
    """The earlier publish (DuckDB COPY ... PARTITION_BY over staged Parquet), kept as the reference."""
    location = table.location(bucket)
    workdir = Path(tempfile.mkdtemp(prefix="cdp-publish-reference-"))
    written: set[str] = set()
    try:
        listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in staged_parquet)
        out = workdir / "out"
        con = duckdb.connect()
        try:
            con.execute("SET threads TO 2")
            con.execute("SET preserve_insertion_order = false")
            keys = ", ".join(table.partition_keys)
            con.execute(
                f"COPY (SELECT * FROM read_parquet([{listing}]) WHERE {where}) TO '{out}' "
                f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000, PARTITION_BY ({keys}), "
                "WRITE_PARTITION_COLUMNS false)"
            )
        finally:
            con.close()
        for folder in sorted({p.parent for p in out.rglob("*.parquet")}):
            relative = folder.relative_to(out).as_posix()
            for n, part in enumerate(sorted(folder.glob("*.parquet"))):
                uri = f"{location}{relative}/part-{label}-{n}.parquet"
                store.put_file(uri, part)
                written.add(uri)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return len(written)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=4, seed=23, workers=1)
    return out


def _staged_paths(b: Backends) -> list[Path]:
    folder = b.settings.lake_dir / b.settings.lake_bucket / "_staging" / JOB
    return sorted(folder.glob("*.arrow"))


def _lake(folder: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    pattern = str(folder / "**" / "*.parquet").replace("'", "''")
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{pattern}', hive_partitioning = true)")
    return con


def test_the_published_lake_equals_the_earlier_duckdb_publish(source, tmp_path):
    b = Backends()
    report = run_batch(source, b, chunk_bytes=256 << 10)  # several chunks, each with many partitions
    assert report.chunks > 2 and report.split is not None
    staged = _staged_paths(b)
    assert len(staged) == report.chunks
    # The reference reads the same staged rows, as the earlier job staged them (Parquet, source order).
    parquet = []
    for i, path in enumerate(staged):
        rows = ipc.open_file(pa.OSFile(str(path))).read_all().sort_by("source_line")
        parquet.append(tmp_path / f"{i}.parquet")
        pq.write_table(rows, parquet[-1], compression="lz4")
    reference = LakeTable("transactions_reference", tables.TRANSACTIONS_LAKE_SCHEMA, tables.PARTITION_KEYS)
    cutoff = f"TIMESTAMP '{report.split.cutoff.isoformat(sep=' ')}'"
    ref_files = reference_publish(
        b.object_store, reference, b.settings.lake_bucket, parquet, "batch", f"ts < {cutoff}"
    )
    assert report.published_files == ref_files > 12

    root = b.settings.lake_dir / b.settings.lake_bucket
    ours, theirs = _lake(root / "transactions"), _lake(root / "transactions_reference")
    columns = ", ".join(tables.TRANSACTIONS_LAKE_SCHEMA.names)
    rows = f"SELECT {columns} FROM t ORDER BY txn_id"
    got, want = ours.execute(rows).fetchall(), theirs.execute(rows).fetchall()
    assert len(got) == report.batch_rows and got == want
    counts = "SELECT year, month, count(*) FROM t GROUP BY ALL ORDER BY ALL"
    assert ours.execute(counts).fetchall() == theirs.execute(counts).fetchall()
    # Same file schema: the data columns in the lake's order, partition keys only in the path.
    ours_file = pq.read_schema(next((root / "transactions").rglob("*.parquet")))
    theirs_file = pq.read_schema(next((root / "transactions_reference").rglob("*.parquet")))
    assert ours_file.names == theirs_file.names == columns.split(", ")[:-2]
    assert ours_file.types == theirs_file.types
    folders = {
        p.parent.relative_to(root / "transactions") for p in (root / "transactions").rglob("*.parquet")
    }
    assert folders == {
        p.parent.relative_to(root / "transactions_reference")
        for p in (root / "transactions_reference").rglob("*.parquet")
    }
    assert ours.execute("SELECT max(ts) FROM t").fetchone()[0] < report.split.cutoff


def _rows(months: list[tuple[int, int]], lines: list[int]) -> pa.Table:
    ts = [datetime(y, m, 3, 12) for y, m in months]
    n = len(months)
    return pa.table(
        {
            "txn_id": [f"t{i}" for i in lines],
            "user_token": ["usr_a"] * n,
            "card_token": ["crd_a"] * n,
            "ts": pa.array(ts, pa.timestamp("s")),
            "amount_cents": list(range(n)),
            "channel": ["swipe"] * n,
            "merchant_id": [1] * n,
            "merchant_city": ["Austin"] * n,
            "merchant_state": ["TX"] * n,
            "zip": ["78701"] * n,
            "mcc": pa.array([5411] * n, pa.int16()),
            "errors": pa.array([[]] * n, pa.list_(pa.string())),
            "is_fraud": [False] * n,
            "source_line": lines,
            "year": pa.array([y for y, _ in months], pa.int32()),
            "month": pa.array([m for _, m in months], pa.int32()),
        },
        schema=tables.TRANSACTIONS_LAKE_SCHEMA,
    )


def test_a_staged_chunk_is_in_partition_order_with_one_batch_per_year(tmp_path):
    months = [(2011, 5), (2010, 2), (2011, 1), (2010, 2), (2011, 5), (2010, 12)]
    path = tmp_path / "chunk.arrow"
    path.write_bytes(staged_chunk_bytes(_rows(months, list(range(len(months)))), ("year", "month")))
    reader = ipc.open_file(pa.OSFile(str(path)))
    assert reader.num_record_batches == 2
    rows = reader.read_all()
    assert list(zip(rows["year"].to_pylist(), rows["month"].to_pylist(), strict=True)) == sorted(months)
    assert rows["source_line"].to_pylist() == [1, 3, 5, 2, 0, 4]  # stable within a partition
    staged = _Staged.open(path)
    assert staged.partitions == {
        2010: [((2010, 2), 2), ((2010, 12), 1)],
        2011: [((2011, 1), 1), ((2011, 5), 2)],
    }
    assert staged.band(2011)["year"].to_pylist() == [2011, 2011, 2011]
    assert staged.band(2012) is None


def test_publish_filters_by_time_drops_empty_partitions_and_removes_stale_files(tmp_path):
    b = Backends()
    bucket = b.settings.lake_bucket
    store = b.object_store
    chunks = [
        _rows([(2010, 1), (2010, 3), (2011, 2)], [1, 2, 3]),
        _rows([(2011, 2), (2010, 1), (2011, 7)], [4, 5, 6]),
    ]
    uris = [f"s3://{bucket}/_staging/test/{i}.arrow" for i in range(len(chunks))]
    for uri, rows in zip(uris, chunks, strict=True):
        store.put_bytes(uri, staged_chunk_bytes(rows, ("year", "month")))
    table = tables.TRANSACTIONS
    assert publish_partitioned(store, table, bucket, uris, "batch") == 4
    folder = b.settings.lake_dir / bucket / "transactions"
    one = folder / "year=2010" / "month=1" / "part-batch-0.parquet"
    assert pq.read_table(one)["source_line"].to_pylist() == [1, 5]
    assert "year" not in pq.read_schema(one).names
    assert not (pq.read_schema(one).metadata or {}).keys() - {b"ARROW:schema"}  # no staging layout
    # Rows at or after the cutoff are left out; a partition left empty gets no file, its old file goes.
    assert publish_partitioned(store, table, bucket, uris, "batch", before=datetime(2011, 2, 1)) == 2
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet"))
    assert files == ["year=2010/month=1/part-batch-0.parquet", "year=2010/month=3/part-batch-0.parquet"]


def test_chunks_staged_in_the_earlier_layout_are_staged_again(source):
    b = Backends()
    first = run_batch(source, b, chunk_bytes=256 << 10)
    manifests = b.settings.lake_dir / b.settings.lake_bucket / "_manifests" / JOB
    legacy = b.settings.lake_dir / b.settings.lake_bucket / "_staging" / JOB
    for path in manifests.glob("*.json"):
        if not path.name.startswith("_"):  # an earlier version's manifest: no staging format
            path.write_text(path.read_text().replace('"format"', '"former"'))
            (legacy / path.name.replace(".json", ".parquet")).write_bytes(b"PAR1")
    again = run_batch(source, b, chunk_bytes=256 << 10)
    assert again.chunks_skipped == 0 and again.batch_rows == first.batch_rows
    assert not list(legacy.glob("*.parquet"))
    n = b.catalog.query("SELECT count(*) AS n, count(DISTINCT txn_id) AS ids FROM transactions").to_pylist()
    assert n == [{"n": first.batch_rows, "ids": first.batch_rows}]


def test_chunks_are_staged_with_zstd_and_lz4_chunks_of_the_former_format_are_staged_again(source):
    b = Backends()
    first = run_batch(source, b, chunk_bytes=256 << 10)
    staged = _staged_paths(b)
    assert len(staged) == first.chunks > 2
    for path in staged:
        body = path.read_bytes()
        assert b"\x28\xb5\x2f\xfd" in body and b"\x04\x22\x4d\x18" not in body  # zstd frames, no lz4
    manifests = b.settings.lake_dir / b.settings.lake_bucket / "_manifests" / JOB
    for path in manifests.glob("*.json"):
        if not path.name.startswith("_"):
            path.write_text(path.read_text().replace(STAGED_FORMAT, "arrow-ipc-lz4-partition-sorted-v1"))
    again = run_batch(source, b, chunk_bytes=256 << 10)
    assert again.chunks_skipped == 0 and again.batch_rows == first.batch_rows
    assert all(
        json.loads(p.read_text()).get("format", STAGED_FORMAT) == STAGED_FORMAT
        for p in manifests.glob("*.json")
    )
    n = b.catalog.query("SELECT count(*) AS n, count(DISTINCT txn_id) AS ids FROM transactions").to_pylist()
    assert n == [{"n": first.batch_rows, "ids": first.batch_rows}]


def test_publish_from_a_remote_store_downloads_the_staged_chunks(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        store = S3ObjectStore(client)
        uris = ["s3://lake/_staging/0.arrow", "s3://lake/_staging/1.arrow"]
        store.put_bytes(uris[0], staged_chunk_bytes(_rows([(2012, 4), (2012, 3)], [1, 2]), ("year", "month")))
        store.put_bytes(uris[1], staged_chunk_bytes(_rows([(2012, 4)], [3]), ("year", "month")))
        assert staged_column(store, uris, "source_line").to_pylist() == [2, 1, 3]
        assert publish_partitioned(store, tables.TRANSACTIONS, "lake", uris, "batch") == 2
        body = store.get_bytes("s3://lake/transactions/year=2012/month=4/part-batch-0.parquet")
        assert pq.read_table(pa.BufferReader(body))["source_line"].to_pylist() == [1, 3]
