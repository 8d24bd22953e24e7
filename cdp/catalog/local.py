"""Local catalog: DuckDB views over the hive-partitioned Parquet lake (Glue + Athena, embedded)."""

from __future__ import annotations

import json
import math
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from cdp.catalog.dialect import column_only_names
from cdp.catalog.local_session import DuckDbReadSession
from cdp.catalog.port import MAX_ROWS_PER_FILE, AnalystLimits, CatalogError, QueryFiles, SplitBy, TableInfo
from cdp.catalog.sandbox import analyst_query, lake_relation

if TYPE_CHECKING:
    from cdp.settings import Settings

# A query that may be computed piecewise (`SplitBy`) runs over groups of about this many source rows: each
# group's sorts fit in memory (no spill), and a sort of n rows costs more than n/k sorts of k rows.
ROWS_PER_BUCKET = 3_000_000
REGISTRY_FILE = "catalog.json"  # the table definitions, in the state folder
# `query_to_files`: memory of its one thread, and rows per row group (a reader's batch; the parquet writer
# buffers one row group, so its size bounds the writer's memory)
QUERY_TO_FILES_MEMORY_LIMIT = "2GB"
QUERY_MEMORY_LIMIT = "3GB"  # `query`: the engine's working memory, the result aside
ROWS_PER_ROW_GROUP = 65_536
VECTOR_ROWS = 2_048  # DuckDB's unit of rows: a row group holds whole vectors

_SAFE_NAME = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _check_name(name: str) -> str:
    if not name or not set(name) <= _SAFE_NAME or name[0].isdigit():
        raise CatalogError(f"invalid table name {name!r}: use lower-case letters, digits and _")
    return name


class DuckDbCatalog:
    """Table definitions kept in a JSON file; queries run on an in-process DuckDB with one view per table.

    `resolve` maps a table's `s3://` location to the local folder that holds it (the object store's
    `local_path`).
    """

    @classmethod
    def from_settings(cls, settings: Settings, resolve: Callable[[str], Path | None]) -> DuckDbCatalog:
        """The catalog of `<state_dir>/catalog.json`, tables read through `resolve`."""
        return cls(
            settings.state_dir / REGISTRY_FILE, resolve, analyst_limits=AnalystLimits.from_settings(settings)
        )

    def __init__(
        self,
        registry_path: Path,
        resolve: Callable[[str], Path | None],
        rows_per_bucket: int = ROWS_PER_BUCKET,
        analyst_limits: AnalystLimits | None = None,
    ) -> None:
        self.registry_path = registry_path
        self.resolve = resolve
        self.rows_per_bucket = rows_per_bucket
        self.analyst_limits = analyst_limits or AnalystLimits()
        self._lock = threading.Lock()

    @property
    def spill_dir(self) -> Path:
        """Where DuckDB spills what does not fit in its memory limit (beside the registry file)."""
        return self.registry_path.parent / "duckdb-spill"

    # -- registry ---------------------------------------------------------------------------------
    def _load(self) -> dict[str, dict]:
        if not self.registry_path.exists():
            return {}
        return json.loads(self.registry_path.read_text())

    def _save(self, entries: dict[str, dict]) -> None:
        self.registry_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.registry_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=2, sort_keys=True))
        tmp.replace(self.registry_path)

    def register_table(self, table: TableInfo) -> None:
        _check_name(table.name)
        with self._lock:
            entries = self._load()
            entries[table.name] = {
                "location": table.location,
                "schema": table.schema.serialize().to_pybytes().hex(),
                "partition_keys": list(table.partition_keys),
            }
            self._save(entries)

    def tables(self) -> list[TableInfo]:
        return [
            TableInfo(
                name=name,
                location=e["location"],
                schema=pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(e["schema"]))),
                partition_keys=tuple(e["partition_keys"]),
            )
            for name, e in sorted(self._load().items())
        ]

    # -- SQL --------------------------------------------------------------------------------------
    def connect(self, sql: str | None = None) -> duckdb.DuckDBPyConnection:
        """A fresh, unrestricted DuckDB connection with a view for every registered table (platform jobs
        only; analysts get `analyst_query`). Given the `sql` it will run, only the tables whose names occur
        in it as words get their view (but words it only uses as columns): a view lists its table's
        files, and a query of a small table would otherwise pay for listing every table of the lake."""
        con = duckdb.connect()
        words = None
        if sql is not None:
            words = set(re.findall(r"[a-z_][a-z0-9_]*", sql.lower())) - column_only_names(sql)
        for t in self.tables():
            if words is None or t.name.lower() in words:
                con.execute(self.view_sql(t))
        return con

    def view_sql(self, table: TableInfo, where: str = "") -> str:
        """`CREATE OR REPLACE VIEW <table> AS ...` over its Parquet files, keeping the rows that match
        `where` (an SQL condition) when one is given."""
        body = self._select_sql(table)
        if where:
            body = f"SELECT * FROM ({body}) WHERE {where}"
        return f"CREATE OR REPLACE VIEW {table.name} AS {body}"

    def _select_sql(self, table: TableInfo) -> str:
        root = self.resolve(table.location)
        if root is None:
            raise CatalogError(f"table {table.name}: location {table.location} is not local")
        files = sorted(root.glob("**/*.parquet")) if root.exists() else []
        if not files:
            # An empty table still answers queries, with its declared columns.
            cols = ", ".join(f'CAST(NULL AS {_duck_type(f.type)}) AS "{f.name}"' for f in table.schema)
            return f"SELECT {cols} WHERE false"
        pattern = str(root / "**" / "*.parquet").replace("'", "''")
        hive = "true" if table.partition_keys else "false"
        return f"SELECT * FROM read_parquet('{pattern}', hive_partitioning={hive}, union_by_name=true)"

    def bucket_count(self, rows: int) -> int:
        """How many groups a piecewise query over `rows` source rows runs in (1: in one go)."""
        return max(1, math.ceil(rows / self.rows_per_bucket))

    def create_table_as(
        self, table: TableInfo, sql: str, split_by: SplitBy | None = None, memory_limit: str = "6GB"
    ) -> int:
        """Write the result under a staging folder, then swap it in for the table's folder.

        With `split_by`, the query runs once per bucket of the source rows (`hash(column) % k`, k from
        the source's row count): the source table's view is narrowed to the bucket before each run and
        every run appends its own files (`b<i>_<uuid>`) to the same staging folder. Nothing is swapped
        in before the last bucket is written, so a failed or interrupted build leaves the old table."""
        _check_name(table.name)
        root = self.resolve(table.location)
        if root is None:
            raise CatalogError(f"table {table.name}: location {table.location} is not local")
        staging = root.with_name(root.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            with self._platform_connection(memory_limit) as con:
                schema = con.sql(f"SELECT * FROM ({sql}) LIMIT 0").to_arrow_table().schema
                for i, narrow in enumerate(self._buckets(con, split_by)):
                    if narrow:
                        con.execute(narrow)
                    self._copy(con, sql, staging, table.partition_keys, i)
                written = f"read_parquet('{staging.as_posix()}/**/*.parquet')"
                rows = con.execute(f"SELECT count(*) FROM {written}")
                count = int(rows.fetchone()[0]) if any(staging.rglob("*.parquet")) else 0
        except CatalogError as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise CatalogError(f"table {table.name}: {e}") from e
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        # Swap folders: the old data stays whole until the new data is complete.
        retired = root.with_name(root.name + ".old")
        shutil.rmtree(retired, ignore_errors=True)
        if root.exists():
            root.rename(retired)
        staging.rename(root)
        shutil.rmtree(retired, ignore_errors=True)
        self.register_table(TableInfo(table.name, table.location, schema, table.partition_keys))
        return count

    def replace_partitions(
        self,
        table: TableInfo,
        sql: str | Sequence[str],
        partitions: Sequence[tuple[int | str, ...]],
        split_by: SplitBy | None = None,
        memory_limit: str = "6GB",
    ) -> int:
        """Write the result under a staging folder (`<table>.parts`), one statement after the other,
        check it, then swap each listed partition's folder for the new one by renames: a failed or
        interrupted write leaves the table as it was, and each partition is switched whole."""
        statements = [sql] if isinstance(sql, str) else list(sql)
        _check_name(table.name)
        current = {t.name: t for t in self.tables()}.get(table.name)
        if current is None or not current.partition_keys:
            raise CatalogError(f"table {table.name}: not a registered partitioned table")
        keys = current.partition_keys
        root = self.resolve(current.location)
        if root is None:
            raise CatalogError(f"table {table.name}: location {current.location} is not local")
        folders = {Path(*(f"{k}={v}" for k, v in zip(keys, values, strict=True))) for values in partitions}
        staging = root.with_name(root.name + ".parts")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            with self._platform_connection(memory_limit) as con:
                for statement in statements:
                    schema = con.sql(f"SELECT * FROM ({statement}) LIMIT 0").to_arrow_table().schema
                    if sorted(zip(schema.names, map(str, schema.types), strict=True)) != sorted(
                        zip(current.schema.names, map(str, current.schema.types), strict=True)
                    ):
                        raise CatalogError("the result's columns are not the table's")
                run = 0
                for narrow in self._buckets(con, split_by):
                    if narrow:
                        con.execute(narrow)
                    for statement in statements:
                        self._copy(con, statement, staging, keys, run)
                        run += 1
                written = f"read_parquet('{staging.as_posix()}/**/*.parquet')"
                files = list(staging.rglob("*.parquet"))
                count = int(con.execute(f"SELECT count(*) FROM {written}").fetchone()[0]) if files else 0
            outside = {f.parent.relative_to(staging) for f in files} - folders
            if outside:
                raise CatalogError(f"the result has rows in {len(outside)} partition(s) not listed")
        except CatalogError as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise CatalogError(f"table {table.name}: {e}") from e
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        retired = root.with_name(root.name + ".retired")
        shutil.rmtree(retired, ignore_errors=True)
        for folder in sorted(folders):
            old, new = root / folder, staging / folder
            if old.exists():
                (retired / folder).parent.mkdir(parents=True, exist_ok=True)
                old.rename(retired / folder)
            if new.exists():
                old.parent.mkdir(parents=True, exist_ok=True)
                new.rename(old)
        shutil.rmtree(retired, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        self.register_table(current)
        return count

    @contextmanager
    def _platform_connection(
        self, memory_limit: str, *, threads: int | None = None, ordered: bool = False, sql: str | None = None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """`connect()` bounded to `memory_limit` (and `threads`), spilling into a folder of its own under
        the state folder (never the working directory; concurrent jobs don't share it). `ordered` keeps
        the rows in the scan's order. DuckDB errors come out as `CatalogError`s."""
        spill = self.spill_dir / uuid.uuid4().hex
        spill.mkdir(parents=True)  # DuckDB creates the last folder only
        con = None
        try:
            con = self.connect(sql)
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute(f"SET temp_directory = '{spill.as_posix()}'")
            con.execute(f"SET preserve_insertion_order = {'true' if ordered else 'false'}")
            if threads is not None:
                con.execute(f"SET threads = {int(threads)}")
            yield con
        except duckdb.Error as e:
            raise CatalogError(str(e)) from e
        finally:
            if con is not None:
                con.close()
            shutil.rmtree(spill, ignore_errors=True)

    def _buckets(self, con: duckdb.DuckDBPyConnection, split_by: SplitBy | None) -> list[str]:
        """One statement per run that narrows the source table's view to that run's bucket ("" when the
        query runs in one go)."""
        if split_by is None:
            return [""]
        source = {t.name: t for t in self.tables()}.get(split_by.table)
        if source is None:
            raise CatalogError(f"split by {split_by.table}.{split_by.column}: unknown table {split_by.table}")
        if split_by.column not in source.schema.names:
            raise CatalogError(f"split by {split_by.table}.{split_by.column}: no such column")
        k = self.bucket_count(int(con.execute(f"SELECT count(*) FROM {source.name}").fetchone()[0]))
        if k == 1:
            return [""]
        column = f'"{split_by.column}"'
        return [self.view_sql(source, where=f"hash({column}) % {k} = {i}") for i in range(k)]

    @staticmethod
    def _copy(
        con: duckdb.DuckDBPyConnection, sql: str, staging: Path, partition_keys: tuple[str, ...], run: int
    ) -> None:
        """COPY the query's result into the staging folder as Parquet; run `run`'s files are its own."""
        if partition_keys:
            keys = ", ".join(partition_keys)
            target, options = staging, f", PARTITION_BY ({keys}), FILENAME_PATTERN 'b{run}_{{uuid}}', APPEND"
        else:
            target, options = staging / f"part-{run}.parquet", ""
        con.execute(f"COPY ({sql}) TO '{target.as_posix()}' (FORMAT parquet, COMPRESSION zstd{options})")

    def query(self, sql: str) -> pa.Table:
        """The result in memory (small results: counts, aggregates, a few rows); the engine's own work
        is bounded to `QUERY_MEMORY_LIMIT` and spills beyond it (DuckDB's default is 80% of the RAM)."""
        try:
            with self._platform_connection(QUERY_MEMORY_LIMIT, ordered=True, sql=sql) as con:
                return con.sql(sql).to_arrow_table()
        except CatalogError as e:
            raise CatalogError(f"query failed: {e}") from e

    def query_to_files(
        self,
        sql: str,
        destination: str,
        *,
        max_rows_per_file: int = MAX_ROWS_PER_FILE,
        memory_limit: str = QUERY_TO_FILES_MEMORY_LIMIT,
    ) -> QueryFiles:
        """`COPY (sql) TO` the destination's folder, streamed: the engine reads, computes and writes row
        group by row group, its memory bounded by `memory_limit` whatever the result's size.

        One thread, in the scan's order: the same data gives the same files byte for byte (callers
        fingerprint them, e.g. a pipeline step's cache key); with more threads the row order, and so
        the bytes, vary from run to run. Files are `data_<n>.parquet` of at most
        max(`max_rows_per_file`, 2,048) rows, every column nullable; an empty result leaves one file
        with the columns."""
        folder = self.resolve(destination)
        if folder is None:
            raise CatalogError(f"query result: destination {destination} is not local")
        if folder.exists() and any(folder.iterdir()):
            raise CatalogError(f"query result: destination {destination} is not empty")
        folder.parent.mkdir(parents=True, exist_ok=True)
        # DuckDB cuts row groups at whole vectors of 2,048 rows
        row_group = max(VECTOR_ROWS, min(max_rows_per_file, ROWS_PER_ROW_GROUP) // VECTOR_ROWS * VECTOR_ROWS)
        options = (
            f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {row_group}, "
            f"ROW_GROUPS_PER_FILE {max(1, max_rows_per_file // row_group)}"
        )
        target = folder.as_posix().replace("'", "''")
        try:
            with self._platform_connection(memory_limit, threads=1, ordered=True, sql=sql) as con:
                # Every column nullable, as Athena writes them and whatever the data: with statistics
                # propagation DuckDB marks a column that holds no NULL *in this data* as required, so
                # the schema would change with the data (and between the files of one result).
                con.execute("SET disabled_optimizers = 'statistics_propagation'")
                rows = con.execute(f"COPY ({sql}) TO '{target}' ({options})").fetchone()
        except CatalogError as e:
            shutil.rmtree(folder, ignore_errors=True)
            reason = (str(e).splitlines() or [type(e).__name__])[0]  # the rest quotes the SQL and the path
            raise CatalogError(f"query failed: {reason}") from e
        return QueryFiles(location=destination.rstrip("/") + "/", rows=int(rows[0]) if rows else None)

    def read_session(self, tables: Collection[str]) -> DuckDbReadSession:
        """One connection for many read-only queries over `tables` (`cdp.catalog.local_session`)."""
        for name in tables:
            _check_name(name)
        return DuckDbReadSession(self, tables)

    def analyst_query(self, sql: str) -> pa.Table:
        """One SELECT in the sandbox (`cdp.catalog.sandbox`): its catalog holds the lake tables as Arrow
        datasets opened here, and DuckDB itself can open no file."""
        relations = {}
        for t in self.tables():
            try:
                relation = lake_relation(t, self.resolve(t.location))
            except (OSError, pa.ArrowException) as e:
                reason = (str(e).splitlines() or [type(e).__name__])[0]
                raise CatalogError(f"table {t.name}: its files cannot be opened: {reason}") from None
            if relation is not None:
                relations[t.name] = relation
        return analyst_query(relations, sql, self.analyst_limits)


def _duck_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{_duck_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        fields = ", ".join(f'"{f.name}" {_duck_type(f.type)}' for f in t)
        return f"STRUCT({fields})"
    return "VARCHAR"
