"""The pages' one way to the data: SQL over the aggregate tables through the catalog port (DuckDB here,
Athena in AWS). A page asks for the tables it needs; a table not built yet gives None ("no data yet")."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd

from cdp.catalog.port import Catalog, CatalogError

TABLES_TTL_SECONDS = 30.0


class DataUnavailable(RuntimeError):
    """A query over an aggregate table failed (one line, no SQL)."""


class DashboardData:
    """Queries of the aggregate tables; the list of registered tables is cached for a few seconds."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._tables: tuple[float, frozenset[str]] | None = None

    def tables(self) -> frozenset[str]:
        """The registered tables (cached `TABLES_TTL_SECONDS`)."""
        now = time.monotonic()
        if self._tables is None or now - self._tables[0] > TABLES_TTL_SECONDS:
            self._tables = (now, frozenset(t.name for t in self.catalog.tables()))
        return self._tables[1]

    def has(self, *names: str) -> bool:
        return set(names) <= self.tables()

    def frame(self, sql: str, needs: Sequence[str]) -> pd.DataFrame | None:
        """The result of `sql` (None when a table of `needs` is not built yet, or it has no row)."""
        if not self.has(*needs):
            return None
        try:
            frame = self.catalog.query(sql).to_pandas()
        except CatalogError as e:
            raise DataUnavailable((str(e).splitlines() or ["query failed"])[0][:200]) from None
        return frame if len(frame) else None
