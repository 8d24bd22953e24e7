"""Where the aggregate tables live: `s3://<lake bucket>/dashboards/<table>/` (a folder of the lake here)."""

from __future__ import annotations

import pyarrow as pa

from cdp.catalog.port import TableInfo

AGGREGATES_PREFIX = "dashboards"


def aggregate_location(bucket: str, name: str) -> str:
    """The location of aggregate table `name` in the lake bucket."""
    return f"s3://{bucket}/{AGGREGATES_PREFIX}/{name}/"


def aggregate_table(bucket: str, name: str, schema: pa.Schema | None = None) -> TableInfo:
    """The catalog entry of aggregate table `name` (schema empty: taken from the query's result)."""
    return TableInfo(name, aggregate_location(bucket, name), schema if schema is not None else pa.schema([]))
