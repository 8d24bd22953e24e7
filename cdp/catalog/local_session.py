"""A read-only session of the local catalog: one DuckDB connection for many small queries (a dashboard
page's), holding views of the session's tables only and unable to open any other file.

The connection is opened once and reused: what a query used to pay for (a new connection, the registry
read, the views' creation, each binding its table's Parquet files) is paid once per session. A view reads
its table's files by a glob, listed again at every query, so new or replaced files show without reopening;
when the registry file changes (a table registered, built or replaced), the connection is reopened with
the new definitions at the next query.

Reaching only its tables: the connection holds a view for each of them and nothing else, DuckDB's file
access is then limited to their folders (`allowed_directories`, external access off) and the configuration
locked, and every statement must parse as exactly one SELECT (no `COPY`, `ATTACH`, `SET`, `CREATE`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from cdp.catalog.port import CatalogError, QueryRefused, TableInfo

SESSION_MEMORY_LIMIT = "3GB"  # as `DuckDbCatalog.query`, without spilling (no file is writable)


class LakeViews(Protocol):
    """What a session needs of `DuckDbCatalog`: its registry file, its tables, where their files are and
    the view of each."""

    registry_path: Path
    resolve: Callable[[str], Path | None]

    def tables(self) -> list[TableInfo]: ...

    def view_sql(self, table: TableInfo, where: str = "") -> str: ...


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _sql_text(path: Path) -> str:
    return path.as_posix().rstrip("/").replace("'", "''") + "/"


class DuckDbReadSession:
    """`ReadSession` of `DuckDbCatalog` (see the module docstring). `connections_opened` and `queries_run`
    count what the session did (the bench reports them)."""

    def __init__(self, catalog: LakeViews, tables: Collection[str]) -> None:
        self._catalog = catalog
        self.requested = frozenset(tables)
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._stamp: tuple[int, int, int] | None = None
        self._registered: frozenset[str] = frozenset()
        self._closed = False
        self.connections_opened = 0
        self.queries_run = 0

    # -- the connection -------------------------------------------------------------------------------
    def _registry_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self._catalog.registry_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _open(self) -> duckdb.DuckDBPyConnection:
        """A new connection: a view per session table registered now, then locked to their folders."""
        stamp = self._registry_stamp()
        tables = [t for t in self._catalog.tables() if t.name in self.requested]
        con = duckdb.connect(":memory:")
        try:
            folders = []
            for t in tables:
                root = self._catalog.resolve(t.location)
                if root is None:
                    raise CatalogError(f"table {t.name}: location {t.location} is not local")
                folders.append(f"'{_sql_text(root)}'")
                con.execute(self._catalog.view_sql(t))
            for statement in (
                "SET python_enable_replacements = false",  # no Python variable of the caller as a table
                "SET autoinstall_known_extensions = false",
                "SET autoload_known_extensions = false",
                "SET temp_directory = ''",  # no spill files: nothing of this connection is written
                f"SET memory_limit = '{SESSION_MEMORY_LIMIT}'",
                f"SET allowed_directories = [{', '.join(folders)}]",
                "SET enable_external_access = false",
                "SET lock_configuration = true",
            ):
                con.execute(statement)
        except duckdb.Error as e:
            con.close()
            raise CatalogError(f"read session: {_first_line(e)}") from None
        except BaseException:
            con.close()
            raise
        self._stamp, self._registered = stamp, frozenset(t.name for t in tables)
        self.connections_opened += 1
        return con

    def _current(self) -> duckdb.DuckDBPyConnection:
        """The open connection, reopened when the registry changed since it was opened (caller locks)."""
        if self._closed:
            raise CatalogError("read session: closed")
        if self._con is None or self._registry_stamp() != self._stamp:
            if self._con is not None:
                self._con.close()
                self._con = None
            self._con = self._open()
        return self._con

    # -- ReadSession ------------------------------------------------------------------------------------
    def tables(self) -> frozenset[str]:
        with self._lock:
            self._current()
            return self._registered

    def query(self, sql: str) -> pa.Table:
        with self._lock:
            con = self._current()
            try:
                statements = con.extract_statements(sql)
            except duckdb.Error as e:
                raise CatalogError(f"query failed: {_first_line(e)}") from None
            if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
                raise QueryRefused("read session: exactly one SELECT per query")
            self.queries_run += 1
            try:
                return con.sql(statements[0]).to_arrow_table()
            except duckdb.Error as e:
                raise CatalogError(f"query failed: {_first_line(e)}") from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> DuckDbReadSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
