"""Write a view's offline features for the whole lake as a partitioned lake table (`<view>_features`).

The catalog port's `create_table_as` does the writing inside the engine: DuckDB streams the view into
hive-partitioned Parquet under a memory limit here, one bucket of cards at a time at full size (the view
is told to be separable by its key); Athena UNLOADs it in AWS in one query.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from cdp.backends import Backends
from cdp.catalog.port import TableInfo
from features.views import split_by, view_sql


def features_table_name(view: str) -> str:
    return f"{view}_features"


def materialize_view(backends: Backends, view: str) -> dict[str, Any]:
    """Compute `view` over every transaction and replace its features table; returns rows and location.

    The engine behind the catalog port writes it (DuckDB here, Athena UNLOAD in AWS): the rows never
    pass through this process. The view's SQL is the committed file, unchanged: splitting it by key is
    the engine's business.
    """
    bucket = backends.settings.lake_bucket
    name = features_table_name(view)
    location = f"s3://{bucket}/{name}/"
    rows = backends.catalog.create_table_as(
        TableInfo(name, location, pa.schema([]), ("year", "month")), view_sql(view), split_by(view)
    )
    return {"table": name, "location": location, "rows": rows}
