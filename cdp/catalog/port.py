"""The catalog + SQL port. SQL is written once in DuckDB's dialect; AWS adapters transpile it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

# `Catalog.query_to_files`: rows per written file, so a reader can take a result file by file
MAX_ROWS_PER_FILE = 1_000_000


# Field metadata of a string partition key: its values, comma-separated (Athena projects them as an enum).
PARTITION_VALUES = b"partition_values"


@dataclass(frozen=True)
class TableInfo:
    """A lake table: where its Parquet files are and how they are partitioned."""

    name: str
    location: str  # s3://bucket/prefix/ (the table's root, hive partitions below it)
    schema: pa.Schema
    partition_keys: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class SplitBy:
    """A query's promise that it may be computed piecewise: its result over every row of `table` is the
    union of its results over groups of those rows that never split a value of `column` (every window,
    aggregate and join in it stays within one value of the column, e.g. a card's events).

    An engine on one machine may use it to compute the query group by group (smaller sorts, no spill);
    an engine that scales out may ignore it."""

    table: str
    column: str


@dataclass(frozen=True)
class AnalystLimits:
    """What one analyst query may use (settings `CDP_ANALYST_*`)."""

    memory_limit: str = "2GB"
    threads: int = 2
    timeout_seconds: float = 300.0
    max_rows: int = 1_000_000
    max_sql_chars: int = 100_000

    @classmethod
    def from_settings(cls, settings) -> AnalystLimits:  # noqa: ANN001 - cdp.settings.Settings
        return cls(
            memory_limit=settings.analyst_memory_limit,
            threads=settings.analyst_threads,
            timeout_seconds=settings.analyst_timeout_seconds,
            max_rows=settings.analyst_max_rows,
            max_sql_chars=settings.analyst_max_sql_chars,
        )


@dataclass(frozen=True)
class QueryFiles:
    """Where `Catalog.query_to_files` wrote a result: Parquet files directly under `location` (an `s3://`
    prefix ending in "/"), and how many rows (None when the engine does not say)."""

    location: str
    rows: int | None = None


class CatalogError(RuntimeError):
    """A table is unknown, or a query failed (the message says which and why)."""


class QueryRefused(CatalogError):
    """An analyst query was refused before it ran (not one SELECT, too long) or its result was too big."""


class ReadSession(Protocol):
    """Read-only queries over a fixed set of lake tables, for a caller that runs many small ones (a
    dashboard page): one connection serves them all, and reaches those tables only. Also a context
    manager (closed on exit). Safe to share between threads (queries run one at a time)."""

    def tables(self) -> frozenset[str]:
        """The session's tables that are registered now (a table not built yet is left out)."""

    def query(self, sql: str) -> pa.Table:
        """Run one SELECT (DuckDB SQL) over the session's tables. A statement that is not one SELECT, or
        that reads any other table or file, raises `CatalogError` (`QueryRefused` when refused before
        it ran); so does a failed query."""

    def close(self) -> None:
        """Release the connection (idempotent; a query after it raises `CatalogError`)."""

    def __enter__(self) -> ReadSession: ...

    def __exit__(self, *exc: object) -> None: ...


class Catalog(Protocol):
    """Register lake tables and run SQL over them."""

    def register_table(self, table: TableInfo) -> None:
        """Create or replace the table's definition (idempotent)."""

    def tables(self) -> list[TableInfo]:
        """Every registered table."""

    def query(self, sql: str) -> pa.Table:
        """Run one SELECT written in DuckDB SQL and return the result (platform jobs only: unrestricted)."""

    def query_to_files(
        self, sql: str, destination: str, *, max_rows_per_file: int = MAX_ROWS_PER_FILE
    ) -> QueryFiles:
        """Run one SELECT written in DuckDB SQL and write its result as Parquet files directly under the
        prefix `destination` (`s3://...`, empty or absent), inside the engine: the result never passes
        through the caller's memory (platform jobs only, e.g. a pipeline step's feature query). A file
        holds at most about `max_rows_per_file` rows where the engine can bound it. Raises
        `CatalogError`."""

    def read_session(self, tables: Collection[str]) -> ReadSession:
        """A read-only session over `tables` (names; registered or not yet): see `ReadSession`. The
        platform's own fixed SQL only (dashboards), not an analyst's: that goes to `analyst_query`."""

    def analyst_query(self, sql: str) -> pa.Table:
        """Run an analyst's SQL (DuckDB dialect) read-only over the lake tables: exactly one SELECT (or
        WITH ... SELECT), no files, settings, extensions or writes, bounded memory, time and rows. Raises
        `CatalogError` with a one-line message (`QueryRefused` when it was not run)."""

    def create_table_as(self, table: TableInfo, sql: str, split_by: SplitBy | None = None) -> int:
        """Replace `table`'s data by the result of `sql` (DuckDB SQL; partition keys last), written as
        Parquet partitioned by `table.partition_keys` inside the engine, and register it. Readers see the
        old data or the new, never a mix. `table.schema` may be empty: it is taken from the result.
        `split_by` (optional) says the SQL may be computed piecewise (see `SplitBy`); the result is the
        same either way. Returns the number of rows written."""

    def replace_partitions(
        self,
        table: TableInfo,
        sql: str | Sequence[str],
        partitions: Sequence[tuple[int | str, ...]],
        split_by: SplitBy | None = None,
    ) -> int:
        """Replace the listed partitions of the registered, partitioned `table` (values of its partition
        keys, in order) by the rows of `sql` (DuckDB SQL, the table's columns; or several SELECTs whose
        rows together are the new partitions', which an engine may run one after the other), leaving
        the others as they are: a listed partition no row falls in is emptied. Raises `CatalogError`
        when the rows fall outside the listed partitions or have other columns than the table's;
        nothing changes then. A partition is switched whole (readers see its old rows or its new ones).
        `split_by` as for `create_table_as`. Returns the number of rows written."""
