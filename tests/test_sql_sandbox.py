"""The analyst SQL surface (`Catalog.analyst_query`, `cdp sql`, the explore notebook) is a sandbox.

Every refusal below is an attack that the former `cdp sql` let through: it ran the analyst's text on a plain
DuckDB connection (`DuckDbCatalog.query`), so `read_text` read the keyring, `read_csv` the source card
files (PAN, CVV), `COPY ... TO` wrote anywhere (label-flipped rows into the lake included), and a write
could hide behind a harmless first statement. Here they run against a real small lake (generated, batch
job) with a planted secret under `<home>/state`, a card file under `<home>/data` and symlinks planted
inside the lake; each must fail with one line that holds no file content, and write nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pyarrow as pa
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from cdp.backends import Backends
from cdp.catalog.athena import GlueAthenaCatalog
from cdp.catalog.dialect import parses_as_trino, to_athena
from cdp.catalog.local import DuckDbCatalog
from cdp.catalog.port import AnalystLimits, CatalogError, QueryRefused, TableInfo
from cdp.settings import Settings
from tests.identity_support import issue

SECRET = "SECRET-MARKER-7f3a9c"  # the planted files' content: it must never come back
PAN = "4556737586899855"

# Normal analyst SQL: the sandbox must answer it exactly as the platform's own connection does.
GOOD_QUERIES = {
    "aggregate": "SELECT channel, count(*) AS n, sum(amount_cents) AS cents FROM transactions "
    "GROUP BY channel ORDER BY channel",
    "partition filter": "SELECT year, month, count(*) AS n FROM transactions "
    "WHERE year = 2019 AND month <= 3 GROUP BY ALL ORDER BY ALL",
    "join": "SELECT c.card_brand, count(*) AS n FROM transactions t JOIN cards c USING (card_token) "
    "GROUP BY ALL ORDER BY ALL",
    "cte + window": "WITH per_card AS (SELECT card_token, count(*) AS n FROM transactions GROUP BY ALL) "
    "SELECT card_token, n, rank() OVER (ORDER BY n DESC, card_token) AS r FROM per_card ORDER BY r",
    "three tables": "SELECT u.birth_year_band, count(DISTINCT c.card_token) AS cards, count(*) AS txns "
    "FROM transactions t JOIN cards c USING (card_token) JOIN customers u ON u.user_token = c.user_token "
    "GROUP BY ALL ORDER BY ALL",
    "from-first": "FROM customers SELECT count(*) AS n",
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> dict:
    """A generated 2-user lake; the platform's answers to GOOD_QUERIES; then the planted bait."""
    from cdp.batch.job import run_batch
    from cdp.synth.generator import generate

    home = tmp_path_factory.mktemp("sandbox") / "home"
    settings = Settings(home=home, workers=1)
    backends = Backends(settings)
    generate(settings.data_dir, users=2, seed=3, workers=1)
    run_batch(settings.data_dir, backends)
    expected = {name: backends.catalog.query(sql).to_pylist() for name, sql in GOOD_QUERIES.items()}
    count = backends.catalog.query("SELECT count(*) AS n FROM transactions").to_pylist()[0]["n"]

    secret = settings.state_dir / "secret-keyring.json"
    secret.write_text(f'{{"master_key": "{SECRET}"}}\n')
    cards_csv = settings.data_dir / "bait_cards.csv"
    cards_csv.write_text(f"card_number,cvv,note\n{PAN},123,{SECRET}\n")
    table = backends.object_store.local_path(f"s3://{settings.lake_bucket}/transactions/")
    partition = next(p.parent for p in table.rglob("*.parquet"))
    (partition / "zz-secret.parquet").symlink_to(secret)  # a link in the lake to the state folder
    (partition / "zz-secret.csv").symlink_to(secret)
    truth = settings.ground_truth_dir / "transactions.parquet"  # the generator's hidden truth
    (partition / "zz-truth.parquet").symlink_to(truth)
    return {
        "home": home,
        "settings": settings,
        "catalog": backends.catalog,
        "expected": expected,
        "count": count,
        "secret": secret,
        "real_keyring": settings.state_dir / "keyring.json",
        "cards_csv": cards_csv,
        "source_cards": settings.data_dir / "sd254_cards.csv",
        "truth": truth,
        "partition": partition,
        "out": tmp_path_factory.mktemp("outside"),
    }


@pytest.fixture(autouse=True)
def private_working_folder(tmp_path, monkeypatch) -> None:
    """Each test works in a folder of its own: "nothing written to the working folder" is then about the
    sandbox alone, not about other tests running beside it (bytecode caches, example databases)."""
    monkeypatch.chdir(tmp_path)


def _files(*roots: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for root in roots for p in root.rglob("*")}


def _refused(lake: dict, sql: str) -> CatalogError:
    """Run `sql` in the sandbox; it must fail with one line, no planted content, and nothing written."""
    before = _files(lake["home"], lake["out"], Path.cwd())
    with pytest.raises(CatalogError) as caught:
        lake["catalog"].analyst_query(sql)
    message = str(caught.value)
    assert "\n" not in message
    for leaked in (SECRET, PAN, "master_key", "card_number"):
        assert leaked not in message
    assert _files(lake["home"], lake["out"], Path.cwd()) == before
    return caught.value


def _attacks(lake: dict) -> dict[str, str]:
    secret, csv, home = lake["secret"], lake["cards_csv"], lake["home"]
    relative = os.path.relpath(secret)
    tilde = "~/" + os.path.relpath(secret, os.path.expanduser("~"))
    dotdot = f"{lake['partition']}/../../../../../state/{secret.name}"
    link = lake["partition"] / "zz-secret.csv"
    lake_file = next(p for p in lake["partition"].glob("part-*.parquet"))
    return {
        "read_text absolute": f"SELECT content FROM read_text('{secret}')",
        "read_text real keyring": f"SELECT content FROM read_text('{lake['real_keyring']}')",
        "read_text relative": f"SELECT content FROM read_text('{relative}')",
        "read_text tilde": f"SELECT content FROM read_text('{tilde}')",
        "read_text dot-dot from the lake": f"SELECT content FROM read_text('{dotdot}')",
        "read_text symlink in the lake": f"SELECT content FROM read_text('{link}')",
        "read_text glob": f"SELECT content FROM read_text('{home}/state/*.json')",
        "read_blob data keys": f"SELECT content FROM read_blob('{home}/state/data_keys.sqlite')",
        "read_csv card file": f"SELECT * FROM read_csv('{csv}')",
        "read_csv_auto source cards": f"SELECT * FROM read_csv_auto('{lake['source_cards']}')",
        "read_csv symlink in the lake": f"SELECT * FROM read_csv('{link}', header=false)",
        "sniff_csv": f"SELECT * FROM sniff_csv('{csv}')",
        "read_json": f"SELECT * FROM read_json('{secret}')",
        "replacement scan csv": f"SELECT * FROM '{csv}'",
        "replacement scan relative": f"SELECT * FROM '{os.path.relpath(csv)}'",
        "parquet_scan ground truth": f"SELECT * FROM parquet_scan('{lake['truth']}')",
        "read_parquet even a lake file": f"SELECT * FROM read_parquet('{lake_file}')",
        "parquet_metadata": f"SELECT * FROM parquet_metadata('{lake_file}')",
        "glob the home": f"SELECT * FROM glob('{home}/**')",
        "glob the root": "SELECT * FROM glob('/*')",
        "file function inside query()": f"SELECT * FROM query('SELECT content FROM read_text(''{secret}'')')",
        "httpfs URL": "SELECT * FROM read_csv('https://example.com/cards.csv')",
        "s3 URL": "SELECT * FROM read_parquet('s3://cdp-lake/transactions/**/*.parquet')",
        "getenv": "SELECT getenv('HOME') AS h",
        "copy into the lake": f"COPY (SELECT * FROM transactions) TO '{lake['partition']}/flipped.parquet'",
        "copy outside": f"COPY transactions TO '{lake['out']}/stolen.csv'",
        "write hidden after a select": f"SELECT 1; COPY transactions TO '{lake['out']}/hidden.csv'",
        "write hidden after a comment": (
            f"SELECT 1 /* ; */ -- x\n; COPY transactions TO '{lake['out']}/c.csv'"
        ),
        "fullwidth semicolon": f"SELECT 1\uff1b COPY transactions TO '{lake['out']}/u.csv'",
        "export database": f"EXPORT DATABASE '{lake['out']}/export'",
        "insert into the lake table": "INSERT INTO transactions SELECT * FROM transactions",
        "create table": "CREATE TABLE stolen AS SELECT * FROM transactions",
        "create view": "CREATE VIEW v AS SELECT 1",
        "create macro": "CREATE MACRO leak(p) AS TABLE SELECT * FROM read_text(p)",
        "attach": f"ATTACH '{home}/state/oltp.sqlite' AS oltp",
        "install": "INSTALL httpfs",
        "load": "LOAD httpfs",
        "re-enable external access": "SET enable_external_access = true",
        "unlock": "SET lock_configuration = false",
        "reset": "RESET disabled_filesystems",
        "pragma": "PRAGMA database_list",
        "call": "CALL pragma_version()",
        "explain": "EXPLAIN SELECT 1",
        "pivot statement": "PIVOT transactions ON channel USING count(*)",
        "prepare": "PREPARE p AS SELECT 1",
        "transaction": "BEGIN TRANSACTION",
        "empty": "   ; -- nothing",
        "huge": "SELECT 1" + " " * 100_001,
    }


ATTACK_NAMES = [
    "read_text absolute",
    "read_text real keyring",
    "read_text relative",
    "read_text tilde",
    "read_text dot-dot from the lake",
    "read_text symlink in the lake",
    "read_text glob",
    "read_blob data keys",
    "read_csv card file",
    "read_csv_auto source cards",
    "read_csv symlink in the lake",
    "sniff_csv",
    "read_json",
    "replacement scan csv",
    "replacement scan relative",
    "parquet_scan ground truth",
    "read_parquet even a lake file",
    "parquet_metadata",
    "glob the home",
    "glob the root",
    "file function inside query()",
    "httpfs URL",
    "s3 URL",
    "getenv",
    "copy into the lake",
    "copy outside",
    "write hidden after a select",
    "write hidden after a comment",
    "fullwidth semicolon",
    "export database",
    "insert into the lake table",
    "create table",
    "create view",
    "create macro",
    "attach",
    "install",
    "load",
    "re-enable external access",
    "unlock",
    "reset",
    "pragma",
    "call",
    "explain",
    "pivot statement",
    "prepare",
    "transaction",
    "empty",
    "huge",
]

# Statements the parser check must refuse before anything runs (not merely fail inside the engine).
REFUSED_UNRUN = {
    "copy into the lake",
    "copy outside",
    "write hidden after a select",
    "write hidden after a comment",
    "export database",
    "insert into the lake table",
    "create table",
    "create view",
    "create macro",
    "attach",
    "install",
    "load",
    "re-enable external access",
    "unlock",
    "reset",
    "pragma",
    "call",
    "explain",
    "pivot statement",
    "prepare",
    "transaction",
    "empty",
    "huge",
}


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_is_refused_without_content_and_writes_nothing(lake, name):
    """Attack (the former `cdp sql` ran each of these): files outside and inside the lake, by every path
    spelling and through symlinks, writes, DDL, settings, extensions, environment, network."""
    error = _refused(lake, _attacks(lake)[name])
    if name in REFUSED_UNRUN:
        assert isinstance(error, QueryRefused), error


def test_the_attack_list_is_the_parametrised_list(lake):
    assert sorted(ATTACK_NAMES) == sorted(_attacks(lake))


@pytest.mark.parametrize("name", sorted(GOOD_QUERIES))
def test_lake_tables_answer_analyst_selects_like_the_platform(lake, name):
    """Joins, aggregates, CTEs, windows, partition filters: the same rows as the platform's connection
    (read before the bait was planted: the symlinks in the lake are not table data)."""
    got = lake["catalog"].analyst_query(GOOD_QUERIES[name]).to_pylist()
    assert got == lake["expected"][name]
    assert got


def test_symlinks_planted_in_the_lake_are_not_rows(lake):
    """Attack: a link named `*.parquet` in a table folder to the hidden ground truth or the keyring."""
    got = lake["catalog"].analyst_query("SELECT count(*) AS n FROM transactions").to_pylist()
    assert got == [{"n": lake["count"]}]


def test_python_variables_of_the_caller_are_not_tables(lake):
    """Attack: DuckDB's Python replacement scan would read a variable of the calling frames as a table."""
    leaked_secret = pa.table({"secret": [SECRET]})  # noqa: F841 - what the query tries to reach
    _refused(lake, "SELECT * FROM leaked_secret")


def test_settings_and_views_name_no_platform_path(lake):
    """Decision: `duckdb_settings()` and `duckdb_views()` are readable, and hold no path of the home (the
    tables are Arrow scans; no directory is allowed, no temp directory set)."""
    catalog = lake["catalog"]
    for sql in (
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM duckdb_views()",
        "SELECT * FROM duckdb_secrets()",
    ):
        text = str(catalog.analyst_query(sql).to_pylist())
        assert str(lake["home"]) not in text and "cdp-lake" not in text
    locked = catalog.analyst_query(
        "SELECT current_setting('enable_external_access') AS ext, "
        "current_setting('lock_configuration') AS lock"
    ).to_pylist()
    assert locked == [{"ext": False, "lock": True}]
    tables = catalog.analyst_query("SELECT table_name FROM information_schema.tables ORDER BY 1").to_pylist()
    assert {t["table_name"] for t in tables} == {t.name for t in catalog.tables()}


def _catalog_with(lake: dict, **limits) -> DuckDbCatalog:
    base = lake["catalog"]
    return DuckDbCatalog(base.registry_path, base.resolve, analyst_limits=AnalystLimits(**limits))


def test_a_long_query_is_interrupted(lake):
    """Attack: a query that never ends holds the machine."""
    catalog = _catalog_with(lake, timeout_seconds=0.5)
    with pytest.raises(CatalogError, match="stopped after 0.5 s"):
        catalog.analyst_query("SELECT count(*) FROM range(1000000000000) a")


def test_memory_is_bounded_and_nothing_spills_to_disk(lake):
    """Attack: a query that fills memory, or the disk through spill files."""
    catalog = _catalog_with(lake, memory_limit="64MB")
    before = _files(lake["home"], Path.cwd())
    with pytest.raises(CatalogError, match="Out of Memory"):
        catalog.analyst_query("SELECT * FROM range(20000000) t(i) ORDER BY random()")
    assert _files(lake["home"], Path.cwd()) == before


def test_a_result_too_big_is_refused(lake):
    catalog = _catalog_with(lake, max_rows=10)
    with pytest.raises(QueryRefused, match="more than 10 rows"):
        catalog.analyst_query("SELECT * FROM transactions")
    assert catalog.analyst_query("SELECT * FROM transactions LIMIT 10").num_rows == 10


def test_an_empty_table_answers_with_its_declared_columns(tmp_path):
    catalog = DuckDbCatalog(tmp_path / "catalog.json", resolve=lambda uri: tmp_path / uri[5:])
    catalog.register_table(TableInfo("alerts", "s3://b/alerts/", pa.schema([("score", pa.float64())])))
    result = catalog.analyst_query("SELECT * FROM alerts")
    assert result.num_rows == 0 and result.column_names == ["score"]


def test_a_text_file_named_parquet_in_the_lake_is_an_error_without_its_content(tmp_path):
    """Attack: a secret copied into a table folder under a Parquet name, hoping an error prints it."""
    catalog = DuckDbCatalog(tmp_path / "catalog.json", resolve=lambda uri: tmp_path / uri[5:])
    folder = tmp_path / "b" / "notes"
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_text(f"{SECRET},{PAN}\n" * 10)
    catalog.register_table(TableInfo("notes", "s3://b/notes/", pa.schema([("x", pa.string())])))
    with pytest.raises(CatalogError, match="table notes: its files cannot be opened") as caught:
        catalog.analyst_query("SELECT * FROM notes")
    assert SECRET not in str(caught.value) and PAN not in str(caught.value)
    assert "\n" not in str(caught.value)


# -- the CLI ------------------------------------------------------------------------------------------
def test_cdp_sql_refuses_a_file_read_with_one_line_and_exit_2(lake, monkeypatch):
    """Attack: `cdp sql "SELECT content FROM read_text('<home>/state/...')"` printed the keyring."""
    from app.cli import app
    from cdp.settings import get_settings

    monkeypatch.setenv("CDP_HOME", str(lake["home"]))
    get_settings.cache_clear()
    analyst = issue(Backends(get_settings()), "ds-sandbox", "data-scientist")
    monkeypatch.setenv("CDP_IDENTITY_FILE", str(analyst))
    get_settings.cache_clear()
    for sql in (
        f"SELECT content FROM read_text('{lake['secret']}')",
        f"SELECT * FROM read_csv('{lake['cards_csv']}')",
        f"SELECT 1; COPY transactions TO '{lake['out']}/cli.csv'",
    ):
        result = CliRunner().invoke(app, ["sql", sql])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        assert SECRET not in result.output and PAN not in result.output
        assert "Traceback" not in result.output
    assert not (lake["out"] / "cli.csv").exists()
    ok = CliRunner().invoke(app, ["sql", "SELECT count(*) AS n FROM transactions"])
    assert ok.exit_code == 0 and f"{lake['count']:,}".replace(",", "") in ok.output.replace(",", "")


# -- Athena (moto) ------------------------------------------------------------------------------------
ATHENA_REFUSED = [
    "COPY (SELECT 1) TO 's3://cdp-lake/x.csv'",
    "INSERT INTO transactions SELECT * FROM transactions",
    "CREATE TABLE stolen AS SELECT * FROM transactions",
    "SELECT * INTO stolen FROM transactions",
    "SELECT 1; DROP TABLE transactions",
    "DROP TABLE transactions",
    "UNLOAD (SELECT * FROM transactions) TO 's3://elsewhere/' WITH (format = 'PARQUET')",
    "EXPLAIN SELECT 1",
    "SET x = 1",
    "ATTACH 'x.db'",
    "",
    "SELECT 1" + " " * 100_001,
]


def _athena_catalog(region: str = "eu-west-1") -> tuple[GlueAthenaCatalog, object]:
    athena = boto3.client("athena", region_name=region)
    athena.create_work_group(
        Name="cdp-analyst",
        Configuration={
            "ResultConfiguration": {"OutputLocation": "s3://cdp-lake/_athena-analyst-results/"},
            "EnforceWorkGroupConfiguration": True,
        },
    )
    catalog = GlueAthenaCatalog(
        boto3.client("glue", region_name=region),
        athena,
        "cdp",
        "s3://cdp-lake/_athena-results/",
        poll_seconds=0.01,
        analyst_workgroup="cdp-analyst",
    )
    return catalog, athena


@mock_aws
def test_athena_analyst_query_runs_transpiled_in_the_analyst_workgroup():
    catalog, athena = _athena_catalog()
    sql = "SELECT count(*) AS n FROM transactions WHERE ts >= TIMESTAMP '2019-01-01' - INTERVAL 1 DAY"
    catalog.analyst_query(sql)
    (qid,) = athena.list_query_executions()["QueryExecutionIds"]
    execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    assert execution["WorkGroup"] == "cdp-analyst"
    assert execution["Query"] == to_athena(sql) and parses_as_trino(execution["Query"])
    assert not execution.get("ResultConfiguration")  # the workgroup's enforced location, not ours


@mock_aws
@pytest.mark.parametrize("sql", ATHENA_REFUSED)
def test_athena_analyst_query_refuses_everything_but_one_select_before_sending(sql):
    """Attack: writes (UNLOAD, CTAS, INSERT, SELECT INTO) or a second statement sent to Athena."""
    catalog, athena = _athena_catalog()
    with pytest.raises(CatalogError) as caught:
        catalog.analyst_query(sql)
    assert "\n" not in str(caught.value)
    assert athena.list_query_executions()["QueryExecutionIds"] == []


def test_settings_name_the_analyst_workgroup_and_limits(monkeypatch):
    monkeypatch.setenv("CDP_ATHENA_ANALYST_WORKGROUP", "bank-analysts")
    monkeypatch.setenv("CDP_ANALYST_MEMORY_LIMIT", "512MB")
    settings = Settings()
    assert settings.athena_analyst_workgroup == "bank-analysts"
    assert AnalystLimits.from_settings(settings).memory_limit == "512MB"
    monkeypatch.setenv("CDP_ANALYST_MEMORY_LIMIT", "1GB'; SET x=1; --")
    with pytest.raises(ValueError, match="analyst_memory_limit"):
        Settings()
