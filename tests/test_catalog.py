"""Catalog + SQL port: DuckDB views locally, Glue + Athena (transpiled SQL) in AWS against moto."""

from __future__ import annotations

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from cdp.catalog.athena import GlueAthenaCatalog, glue_type
from cdp.catalog.dialect import parses_as_trino, to_athena
from cdp.catalog.local import DuckDbCatalog
from cdp.catalog.port import CatalogError, TableInfo

SCHEMA = pa.schema(
    [
        ("txn_id", pa.string()),
        ("amount_cents", pa.int64()),
        ("is_fraud", pa.bool_()),
        ("errors", pa.list_(pa.string())),
        ("ts", pa.timestamp("s")),
        ("year", pa.int32()),
        ("month", pa.int32()),
    ]
)


def _write_partitions(root):
    for year, month, n in ((2019, 1, 3), (2019, 2, 2), (2020, 1, 4)):
        folder = root / f"year={year}" / f"month={month}"
        folder.mkdir(parents=True)
        t = pa.table(
            {
                "txn_id": [f"{year}-{month}-{i}" for i in range(n)],
                "amount_cents": [100 * i for i in range(n)],
                "is_fraud": [i == 0 for i in range(n)],
                "errors": [[] for _ in range(n)],
                "ts": pa.array([0] * n, pa.timestamp("s")),
            }
        )
        pq.write_table(t, folder / "part-0.parquet")


def test_duckdb_catalog_queries_hive_partitions_and_prunes_by_them(tmp_path):
    lake = tmp_path / "lake" / "bucket" / "transactions"
    _write_partitions(lake)
    cat = DuckDbCatalog(tmp_path / "catalog.json", resolve=lambda uri: tmp_path / "lake" / uri[5:])
    cat.register_table(TableInfo("transactions", "s3://bucket/transactions/", SCHEMA, ("year", "month")))
    got = cat.query(
        "SELECT year, count(*) AS n, sum(amount_cents) AS s FROM transactions GROUP BY year ORDER BY year"
    )
    assert got.to_pylist() == [{"year": 2019, "n": 5, "s": 400}, {"year": 2020, "n": 4, "s": 600}]
    assert cat.query("SELECT count(*) AS n FROM transactions WHERE month = 2").to_pylist() == [{"n": 2}]
    assert [t.name for t in cat.tables()] == ["transactions"]
    assert cat.tables()[0].schema.equals(SCHEMA)


def test_an_empty_table_answers_with_its_columns(tmp_path):
    cat = DuckDbCatalog(tmp_path / "catalog.json", resolve=lambda uri: tmp_path / uri[5:])
    cat.register_table(TableInfo("alerts", "s3://b/alerts/", SCHEMA, ("year", "month")))
    result = cat.query("SELECT * FROM alerts")
    assert result.num_rows == 0
    assert "amount_cents" in result.column_names


def test_an_empty_table_keeps_nested_column_types(tmp_path):
    """A table with no files yet answers queries into its lists of structs (e.g. alerts' reason codes)."""
    reason = pa.struct([("feature", pa.string()), ("contribution", pa.float64())])
    schema = pa.schema([("txn_id", pa.string()), ("reasons", pa.list_(reason))])
    cat = DuckDbCatalog(tmp_path / "catalog.json", resolve=lambda uri: tmp_path / uri[5:])
    cat.register_table(TableInfo("alerts", "s3://b/alerts/", schema))
    result = cat.query("SELECT txn_id, reasons[1].feature AS top FROM alerts")
    assert result.num_rows == 0
    assert result.schema.field("top").type == pa.string()


def test_bad_sql_and_bad_names_fail_clearly(tmp_path):
    cat = DuckDbCatalog(tmp_path / "catalog.json", resolve=lambda uri: tmp_path / uri[5:])
    with pytest.raises(CatalogError, match="query failed"):
        cat.query("SELECT * FROM no_such_table")
    with pytest.raises(CatalogError, match="invalid table name"):
        cat.register_table(TableInfo("x; DROP", "s3://b/x/", SCHEMA))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT card_token, count(*) FILTER (WHERE is_fraud) AS frauds FROM transactions GROUP BY ALL",
        "SELECT sum(amount_cents) OVER (PARTITION BY card_token ORDER BY ts "
        "RANGE BETWEEN INTERVAL 24 HOURS PRECEDING AND CURRENT ROW) AS s24 FROM transactions",
        "SELECT date_trunc('month', ts) AS m, ts - INTERVAL 7 DAYS AS w FROM transactions "
        "WHERE ts >= TIMESTAMP '2019-01-01'",
    ],
)
def test_duckdb_sql_transpiles_to_valid_trino(sql):
    athena = to_athena(sql)
    assert parses_as_trino(athena)
    assert "INTERVAL '" in athena or "INTERVAL" not in sql.upper()


def test_glue_types_cover_the_lake_schema():
    assert [glue_type(f.type) for f in SCHEMA] == [
        "string",
        "bigint",
        "boolean",
        "array<string>",
        "timestamp",
        "int",
        "int",
    ]


def test_glue_types_cover_the_scored_tables():
    from inference.streaming.scored import FRAUD_ALERTS, TRANSACTIONS_SCORED

    for table in (TRANSACTIONS_SCORED, FRAUD_ALERTS):  # registered by the stream handler in AWS mode
        assert all(glue_type(f.type) for f in table.schema)
    reasons = pa.list_(pa.struct([("feature", pa.string()), ("contribution", pa.float64())]))
    assert glue_type(reasons) == "array<struct<feature:string,contribution:double>>"


@mock_aws
def test_glue_athena_registers_projected_tables_and_sends_trino_sql():
    region = "eu-west-1"
    glue = boto3.client("glue", region_name=region)
    athena = boto3.client("athena", region_name=region)
    boto3.client("s3", region_name=region).create_bucket(
        Bucket="results", CreateBucketConfiguration={"LocationConstraint": region}
    )
    cat = GlueAthenaCatalog(glue, athena, "cdp", "s3://results/athena/", poll_seconds=0.01)
    info = TableInfo("transactions", "s3://lake/transactions/", SCHEMA, ("year", "month"))
    cat.register_table(info)
    cat.register_table(info)  # idempotent: update, not a second create
    (got,) = cat.tables()
    assert got.name == "transactions" and got.partition_keys == ("year", "month")
    assert [f.name for f in got.schema] == [f.name for f in SCHEMA]
    params = glue.get_table(DatabaseName="cdp", Name="transactions")["Table"]["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["storage.location.template"] == "s3://lake/transactions/year=${year}/month=${month}"
    sql = "SELECT count(*) AS n FROM transactions WHERE ts >= TIMESTAMP '2019-01-01' - INTERVAL 1 DAY"
    cat.query(sql)
    (qid,) = athena.list_query_executions()["QueryExecutionIds"]
    sent = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Query"]
    assert sent == to_athena(sql) and parses_as_trino(sent)
    assert "INTERVAL '1' DAY" in sent


def test_create_table_as_replaces_a_partitioned_table_whole(tmp_path):
    lake = tmp_path / "lake" / "bucket" / "transactions"
    _write_partitions(lake)
    cat = DuckDbCatalog(tmp_path / "catalog.json", resolve=lambda uri: tmp_path / "lake" / uri[5:])
    cat.register_table(TableInfo("transactions", "s3://bucket/transactions/", SCHEMA, ("year", "month")))
    target = TableInfo("big_ones", "s3://bucket/big_ones/", pa.schema([]), ("year", "month"))
    sql = "SELECT txn_id, amount_cents, year, month FROM transactions WHERE amount_cents >= {}"
    assert cat.create_table_as(target, sql.format(100)) == 6
    assert cat.create_table_as(target, sql.format(200)) == 3  # replaced, not appended
    got = cat.query("SELECT year, count(*) AS n FROM big_ones GROUP BY year ORDER BY year").to_pylist()
    assert got == [{"year": 2019, "n": 1}, {"year": 2020, "n": 2}]
    assert [f.name for f in next(t for t in cat.tables() if t.name == "big_ones").schema] == [
        "txn_id",
        "amount_cents",
        "year",
        "month",
    ]
    assert not (tmp_path / "lake" / "bucket" / "big_ones.new").exists()


@mock_aws
def test_athena_create_table_as_unloads_to_a_fresh_prefix_and_repoints_the_table():
    region = "eu-west-1"
    glue = boto3.client("glue", region_name=region)
    athena = boto3.client("athena", region_name=region)
    cat = GlueAthenaCatalog(glue, athena, "cdp", "s3://results/athena/", poll_seconds=0.01)
    info = TableInfo("big_ones", "s3://lake/big_ones/", SCHEMA, ("year", "month"))
    cat.create_table_as(info, "SELECT * FROM transactions WHERE amount_cents >= 100")
    first = glue.get_table(DatabaseName="cdp", Name="big_ones")["Table"]["StorageDescriptor"]["Location"]
    cat.create_table_as(info, "SELECT * FROM transactions WHERE amount_cents >= 200")
    second = glue.get_table(DatabaseName="cdp", Name="big_ones")["Table"]["StorageDescriptor"]["Location"]
    assert first.startswith("s3://lake/big_ones/run=") and second.startswith("s3://lake/big_ones/run=")
    assert first != second
    sent = [
        athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"]
        for q in athena.list_query_executions()["QueryExecutionIds"]
    ]
    unloads = [q for q in sent if q.startswith("UNLOAD")]
    assert len(unloads) == 2 and all("partitioned_by = ARRAY['year', 'month']" in q for q in unloads)
    assert all(parses_as_trino(q.split("UNLOAD (", 1)[1].rsplit(") TO", 1)[0]) for q in unloads)


def test_create_table_as_spills_under_the_state_folder_and_cleans_up(tmp_path, monkeypatch):
    """A build larger than its memory limit spills beside the catalog file, not into the working folder."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    cat = DuckDbCatalog(tmp_path / "state" / "catalog.json", resolve=lambda uri: tmp_path / "lake" / uri[5:])
    target = TableInfo("sorted_numbers", "s3://bucket/sorted_numbers/", pa.schema([]), ())
    sql = "SELECT i, md5(CAST(i AS VARCHAR)) AS h FROM range(3000000) t(i) ORDER BY h, i"
    assert cat.create_table_as(target, sql, memory_limit="200MB") == 3_000_000
    assert list(workdir.iterdir()) == []  # nothing spilled into the working directory
    assert not any(cat.spill_dir.iterdir()) if cat.spill_dir.exists() else True  # spill folders removed


def test_from_settings_builds_both_adapters(tmp_path, monkeypatch):
    from cdp.settings import Settings

    settings = Settings(home=tmp_path / "home", lake_bucket="lake-x", athena_analyst_workgroup="analysts")
    local = DuckDbCatalog.from_settings(settings, resolve=lambda uri: None)
    assert local.registry_path == settings.state_dir / "catalog.json"
    assert local.analyst_limits.max_rows == settings.analyst_max_rows
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    remote = GlueAthenaCatalog.from_settings(settings)
    assert (remote.database, remote.output_location) == ("cdp", "s3://lake-x/_athena-results/")
    assert remote.analyst_workgroup == "analysts"
    assert remote.athena.meta.region_name == settings.aws_region


def test_replace_partitions_swaps_the_listed_partitions_only(tmp_path):
    lake = tmp_path / "lake" / "bucket" / "transactions"
    _write_partitions(lake)
    cat = DuckDbCatalog(tmp_path / "catalog.json", resolve=lambda uri: tmp_path / "lake" / uri[5:])
    cat.register_table(TableInfo("transactions", "s3://bucket/transactions/", SCHEMA, ("year", "month")))
    target = TableInfo("copies", "s3://bucket/copies/", pa.schema([]), ("year", "month"))
    cat.create_table_as(target, "SELECT txn_id, amount_cents, year, month FROM transactions")
    fresh = "SELECT txn_id || '-new' AS txn_id, amount_cents, year, month FROM transactions WHERE year = 2020"
    # (2019, 2) is listed but gets no row: emptied; (2019, 1) is not listed: kept
    assert cat.replace_partitions(target, fresh, [(2019, 2), (2020, 1)]) == 4
    got = cat.query(
        "SELECT year, month, count(*) AS n, min(txn_id) AS t FROM copies GROUP BY ALL ORDER BY ALL"
    )
    assert got.to_pylist() == [
        {"year": 2019, "month": 1, "n": 3, "t": "2019-1-0"},
        {"year": 2020, "month": 1, "n": 4, "t": "2020-1-0-new"},
    ]
    root = tmp_path / "lake" / "bucket" / "copies"
    assert not root.with_name("copies.parts").exists() and not root.with_name("copies.retired").exists()


def test_replace_partitions_refuses_rows_outside_the_list_or_other_columns(tmp_path):
    lake = tmp_path / "lake" / "bucket" / "transactions"
    _write_partitions(lake)
    cat = DuckDbCatalog(tmp_path / "catalog.json", resolve=lambda uri: tmp_path / "lake" / uri[5:])
    cat.register_table(TableInfo("transactions", "s3://bucket/transactions/", SCHEMA, ("year", "month")))
    target = TableInfo("copies", "s3://bucket/copies/", pa.schema([]), ("year", "month"))
    sql = "SELECT txn_id, amount_cents, year, month FROM transactions"
    cat.create_table_as(target, sql)
    with pytest.raises(CatalogError, match="not listed"):
        cat.replace_partitions(target, sql, [(2020, 1)])
    with pytest.raises(CatalogError, match="columns"):
        cat.replace_partitions(
            target, "SELECT txn_id, year, month FROM transactions WHERE year = 2020", [(2020, 1)]
        )
    with pytest.raises(CatalogError, match="not a registered"):
        cat.replace_partitions(
            TableInfo("nothing", "s3://bucket/nothing/", SCHEMA, ("year",)), sql, [(2020,)]
        )
    assert cat.query("SELECT count(*) AS n FROM copies").to_pylist() == [{"n": 9}]  # unchanged


@mock_aws
def test_athena_replace_partitions_unloads_kept_and_fresh_rows_to_a_fresh_prefix():
    region = "eu-west-1"
    glue = boto3.client("glue", region_name=region)
    athena = boto3.client("athena", region_name=region)
    cat = GlueAthenaCatalog(glue, athena, "cdp", "s3://results/athena/", poll_seconds=0.01)
    info = TableInfo("big_ones", "s3://lake/big_ones/", SCHEMA, ("year", "month"))
    cat.create_table_as(info, "SELECT * FROM transactions")
    first = glue.get_table(DatabaseName="cdp", Name="big_ones")["Table"]["StorageDescriptor"]["Location"]
    cat.replace_partitions(info, "SELECT * FROM transactions WHERE year = 2020", [(2020, 1), (2020, 2)])
    second = glue.get_table(DatabaseName="cdp", Name="big_ones")["Table"]["StorageDescriptor"]["Location"]
    assert second.startswith("s3://lake/big_ones/run=") and second != first
    sent = [
        athena.get_query_execution(QueryExecutionId=q)["QueryExecution"]["Query"]
        for q in athena.list_query_executions()["QueryExecutionIds"]
    ]
    (unload,) = [q for q in sent if q.startswith("UNLOAD") and "UNION ALL" in q]
    assert "partitioned_by = ARRAY['year', 'month']" in unload
    assert 'WHERE NOT (("year" = 2020 AND "month" = 1) OR ("year" = 2020 AND "month" = 2))' in unload
    assert parses_as_trino(unload.split("UNLOAD (", 1)[1].rsplit(") TO", 1)[0])


@mock_aws
def test_athena_projects_year_month_as_integers_and_a_string_key_by_its_declared_values():
    from cdp.catalog.port import PARTITION_VALUES

    glue = boto3.client("glue", region_name="eu-west-1")
    cat = GlueAthenaCatalog(glue, boto3.client("athena", region_name="eu-west-1"), "cdp", "s3://r/")
    cat.register_table(TableInfo("monthly", "s3://lake/monthly/", SCHEMA, ("year", "month")))
    split = pa.field("split", pa.string(), metadata={PARTITION_VALUES: b"train,validation,test"})
    cat.register_table(
        TableInfo("sets", "s3://lake/sets/", pa.schema([("x", pa.int64()), split]), ("split",))
    )
    cat.register_table(
        TableInfo("free", "s3://lake/free/", pa.schema([("x", pa.int64()), ("day", pa.string())]), ("day",))
    )

    def described(name: str) -> tuple[dict, dict]:
        table = glue.get_table(DatabaseName="cdp", Name=name)["Table"]
        return table["Parameters"], {k["Name"]: k["Type"] for k in table["PartitionKeys"]}

    params, keys = described("monthly")
    assert keys == {"year": "int", "month": "int"}
    assert (params["projection.year.range"], params["projection.month.range"]) == ("1990,2100", "1,12")
    params, keys = described("sets")
    assert keys == {"split": "string"}
    assert params["projection.split.type"] == "enum"
    assert params["projection.split.values"] == "train,validation,test"
    assert params["storage.location.template"] == "s3://lake/sets/split=${split}"
    params, keys = described("free")
    assert keys == {"day": "string"} and params["projection.day.type"] == "injected"
