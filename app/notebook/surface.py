"""The lake as a notebook may see it: the catalog's read-only analyst surface, whatever code asks.

`ReadOnlyCatalog` answers every query (`query`, `analyst_query`) through `Catalog.analyst_query` (one
SELECT over the lake tables in the sandbox: no files, settings, extensions or writes, bounded memory, time
and rows) and refuses every write. `AnalystBackends` is a `Backends` whose catalog is that one, so the
platform's own read paths (the feature views, the promotion gate's holdout) run unchanged for a notebook
and still never reach the lake around the analyst surface. No DuckDB connection is opened here.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from cdp.backends import Backends
from cdp.catalog.port import Catalog, CatalogError, QueryFiles, SplitBy, TableInfo


class ReadOnlyCatalog:
    """A `Catalog` that reads through the analyst sandbox and writes nothing."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def tables(self) -> list[TableInfo]:
        return self._catalog.tables()

    def query(self, sql: str) -> pa.Table:
        """The analyst surface's answer (never the platform's unrestricted engine)."""
        return self._catalog.analyst_query(sql)

    def analyst_query(self, sql: str) -> pa.Table:
        return self._catalog.analyst_query(sql)

    def register_table(self, table: TableInfo) -> None:
        raise CatalogError("the analyst surface is read-only: tables are registered by platform jobs")

    def create_table_as(self, table: TableInfo, sql: str, split_by: SplitBy | None = None) -> int:
        raise CatalogError("the analyst surface is read-only: tables are written by platform jobs")

    def query_to_files(self, sql: str, destination: str, *, max_rows_per_file: int = 0) -> QueryFiles:
        raise CatalogError("the analyst surface is read-only: it writes no files")


class AnalystBackends:
    """The caller's `Backends`, with the catalog replaced by its read-only analyst surface."""

    def __init__(self, backends: Backends) -> None:
        self._backends = backends
        self.settings = backends.settings
        self.catalog = ReadOnlyCatalog(backends.catalog)

    def __getattr__(self, name: str) -> Any:  # every other port as the caller's backends give it
        return getattr(self._backends, name)
