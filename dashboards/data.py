"""The pages' one way to the data: SQL over the aggregate tables through a read session of the catalog
port (`Catalog.read_session`: one DuckDB connection here, Athena queries in AWS), scoped to the tables of
the pages the viewer may open. A page asks for the tables it needs; a table not built yet gives None
("no data yet")."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd

from cdp.catalog.port import CatalogError, ReadSession

TABLES_TTL_SECONDS = 30.0


class DataUnavailable(RuntimeError):
    """A query over an aggregate table failed (one line, no SQL)."""


class DashboardData:
    """Queries of the aggregate tables through `session`; the session's registered tables are cached for a
    few seconds, and within one run of the page (`start_run`) a query asked twice runs once."""

    def __init__(self, session: ReadSession) -> None:
        self.session = session
        self._tables: tuple[float, frozenset[str]] | None = None
        self._run: dict[str, pd.DataFrame | None] = {}

    def start_run(self) -> None:
        """A new render begins: forget the previous run's results (the tables may have changed since)."""
        self._run = {}

    def tables(self) -> frozenset[str]:
        """The session's tables that are built (cached `TABLES_TTL_SECONDS`)."""
        now = time.monotonic()
        if self._tables is None or now - self._tables[0] > TABLES_TTL_SECONDS:
            try:
                self._tables = (now, self.session.tables())
            except CatalogError as e:
                raise DataUnavailable((str(e).splitlines() or ["query failed"])[0][:200]) from None
        return self._tables[1]

    def has(self, *names: str) -> bool:
        return set(names) <= self.tables()

    def frame(self, sql: str, needs: Sequence[str]) -> pd.DataFrame | None:
        """The result of `sql` (None when a table of `needs` is not built yet, or it has no row)."""
        if not self.has(*needs):
            return None
        if sql not in self._run:
            try:
                frame = self.session.query(sql).to_pandas()
            except CatalogError as e:
                raise DataUnavailable((str(e).splitlines() or ["query failed"])[0][:200]) from None
            self._run[sql] = frame if len(frame) else None
        frame = self._run[sql]
        return None if frame is None else frame.copy()  # the caller may add columns to its copy
