"""The offline path: a view's committed SQL run over the lake through the catalog port."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa

from cdp.catalog.port import Catalog
from features.views import view_sql


def _literal(ts: datetime) -> str:
    return f"TIMESTAMP '{ts.isoformat(sep=' ', timespec='seconds')}'"


def range_sql(view: str, start: datetime | None = None, end: datetime | None = None) -> str:
    """The view's rows with `start <= ts < end`, computed over the whole history (so windows and history
    features before `start` are right), sorted by the event order."""
    where = []
    if start is not None:
        where.append(f"v.ts >= {_literal(start)}")
    if end is not None:
        where.append(f"v.ts < {_literal(end)}")
    clause = f"WHERE {' AND '.join(where)}\n" if where else ""
    return f"SELECT v.* FROM (\n{view_sql(view)}) AS v\n{clause}ORDER BY v.ts, v.txn_id"


def compute_view(
    catalog: Catalog, view: str, start: datetime | None = None, end: datetime | None = None
) -> pa.Table:
    """Offline features of every transaction with `start <= ts < end` (all when both are None)."""
    return catalog.query(range_sql(view, start, end))
