"""A read-only session of the Glue + Athena catalog: the same catalog object runs the queries (each one an
Athena query, as without a session), after sqlglot's parse shows the query is one SELECT reading the
session's tables only."""

from __future__ import annotations

import threading
from collections.abc import Collection

import pyarrow as pa

from cdp.catalog.dialect import tables_read
from cdp.catalog.port import Catalog, CatalogError, QueryRefused


class AthenaReadSession:
    """`ReadSession` of `GlueAthenaCatalog` (`catalog`). `queries_run` counts the queries sent."""

    def __init__(self, catalog: Catalog, tables: Collection[str]) -> None:
        self._catalog = catalog
        self.requested = frozenset(name.lower() for name in tables)
        self._closed = False
        self._lock = threading.Lock()
        self.queries_run = 0

    def _check_open(self) -> None:
        if self._closed:
            raise CatalogError("read session: closed")

    def tables(self) -> frozenset[str]:
        self._check_open()
        return frozenset(t.name for t in self._catalog.tables() if t.name.lower() in self.requested)

    def query(self, sql: str) -> pa.Table:
        self._check_open()
        outside = tables_read(sql) - self.requested
        if outside:
            raise QueryRefused(f"read session: table {sorted(outside)[0]} is not one of its tables")
        with self._lock:
            self.queries_run += 1
        return self._catalog.query(sql)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> AthenaReadSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
