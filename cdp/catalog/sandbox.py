"""The analyst SQL sandbox: one read-only SELECT over the lake tables, on a DuckDB connection that can open
no file, reach no network, load no extension and change none of its own settings.

The lake tables are handed to DuckDB as Arrow datasets opened by the platform (pyarrow reads the Parquet
files; DuckDB scans the Arrow stream with projection and filter pushdown, so partition filters still
prune files). DuckDB's own local file system is then disabled and the configuration locked, so every file
function (`read_text`, `read_blob`, `read_csv`, `read_parquet`, `glob`, `FROM 'file'`, `COPY ... TO`,
`ATTACH`, `INSTALL`) fails inside the engine, whatever path, symlink or spelling it is given. Views over
`read_parquet` with `allowed_directories` were not enough: DuckDB would then read any file under the lake
folders with any reader, and `COPY ... TO` may write there.

On top of that, the engine's own parser must see exactly one statement, of type SELECT (which includes
`WITH ... SELECT`, `FROM t`, `DESCRIBE`, `SUMMARIZE`), and that parsed statement is what runs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cdp.catalog.port import AnalystLimits, CatalogError, QueryRefused, TableInfo

_BATCH_ROWS = 64 * 1024


def _lockdown(limits: AnalystLimits) -> tuple[str, ...]:
    """The settings that close the connection, in the order DuckDB accepts them: the temp directory must be
    gone before external access is switched off, and the lock comes last."""
    return (
        "SET python_enable_replacements = false",  # no Python variable of the caller as a table
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET allow_community_extensions = false",
        "SET allow_persistent_secrets = false",  # no secret store on disk to list or read
        "SET temp_directory = ''",  # no spill files: the memory limit is the limit
        f"SET memory_limit = '{limits.memory_limit}'",
        f"SET threads = {int(limits.threads)}",
        "SET disabled_filesystems = 'LocalFileSystem'",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    )


def lake_files(root: Path | None) -> list[Path]:
    """A table's Parquet files: regular files inside `root` (symlinks and anything resolving outside it
    are left out)."""
    if root is None or not root.is_dir():
        return []
    base = root.resolve()
    return [
        p
        for p in sorted(root.rglob("*.parquet"))
        if p.is_file() and not p.is_symlink() and p.resolve().is_relative_to(base)
    ]


def lake_relation(table: TableInfo, root: Path | None) -> ds.Dataset | pa.Table | None:
    """The table as the sandbox sees it: an Arrow dataset over its files (columns: the union of the files',
    then the hive partition keys typed as declared), its declared columns when it has no data yet, or
    None when it has neither."""
    files = lake_files(root)
    if not files:
        return table.schema.empty_table() if len(table.schema) else None
    keys = table.partition_keys
    declared = {f.name: f.type for f in table.schema}
    found = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    partitions = pa.schema([(k, declared.get(k, pa.string())) for k in keys])
    schema = pa.schema([f for f in found if f.name not in keys] + list(partitions))
    return ds.dataset(
        [str(f) for f in files],
        schema=schema,
        format="parquet",
        partitioning=ds.partitioning(partitions, flavor="hive") if keys else None,
        partition_base_dir=str(root) if keys else None,
    )


def open_sandbox(
    relations: Mapping[str, ds.Dataset | pa.Table], limits: AnalystLimits
) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB whose catalog holds `relations` (name -> Arrow data) and nothing else
    readable, then locked (see the module docstring)."""
    con = duckdb.connect(":memory:")
    try:
        for name, data in relations.items():
            con.register(name, data)
        for statement in _lockdown(limits):
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def single_select(con: duckdb.DuckDBPyConnection, sql: str, limits: AnalystLimits) -> duckdb.Statement:
    """The one SELECT statement `sql` holds, as parsed by the engine; anything else is refused."""
    if len(sql) > limits.max_sql_chars:
        raise QueryRefused(f"analyst SQL: {len(sql):,} characters; at most {limits.max_sql_chars:,}")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as e:
        raise CatalogError(f"analyst SQL: {_first_line(e)}") from None
    if len(statements) != 1:
        raise QueryRefused(f"analyst SQL: expected exactly one statement, got {len(statements)}")
    (statement,) = statements
    if statement.type != duckdb.StatementType.SELECT:
        raise QueryRefused(f"analyst SQL: only SELECT queries are allowed, not {statement.type.name}")
    return statement


def _interrupt(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.interrupt()
    except duckdb.Error:  # the query ended and the connection closed meanwhile
        pass


def run_select(
    con: duckdb.DuckDBPyConnection, statement: duckdb.Statement, limits: AnalystLimits
) -> pa.Table:
    """Run the parsed statement, interrupting it after `limits.timeout_seconds` and refusing results of
    more than `limits.max_rows` rows."""
    timer = threading.Timer(limits.timeout_seconds, _interrupt, (con,))
    timer.daemon = True
    timer.start()
    try:
        reader = con.sql(statement).to_arrow_reader(_BATCH_ROWS)
        batches, rows = [], 0
        for batch in reader:
            rows += batch.num_rows
            if rows > limits.max_rows:
                raise QueryRefused(
                    f"analyst SQL: more than {limits.max_rows:,} rows; aggregate, or add a LIMIT"
                )
            batches.append(batch)
        return pa.Table.from_batches(batches, schema=reader.schema)
    except duckdb.InterruptException:
        raise CatalogError(f"analyst SQL: stopped after {limits.timeout_seconds:g} s") from None
    except (duckdb.Error, pa.ArrowException) as e:
        raise CatalogError(f"analyst SQL failed: {_first_line(e)}") from None
    finally:
        timer.cancel()


def analyst_query(
    relations: Mapping[str, ds.Dataset | pa.Table], sql: str, limits: AnalystLimits
) -> pa.Table:
    """`sql` (one SELECT, DuckDB dialect) over `relations` in a fresh sandbox."""
    con = open_sandbox(relations, limits)
    try:
        return run_select(con, single_select(con, sql, limits), limits)
    finally:
        con.close()
