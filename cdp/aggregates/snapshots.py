"""Aggregate tables computed outside the engine (from files and ports, not lake SQL), written into the
lake beside the SQL aggregates and registered in the catalog (Glue in AWS): one Parquet file per table,
replaced whole on every refresh."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from cdp.aggregates.locations import aggregate_location, aggregate_table
from cdp.catalog.port import CatalogError
from cdp.ibm.quarantine import read_quarantine
from cdp.lake.writer import parquet_bytes

if TYPE_CHECKING:
    from cdp.backends import Backends

QUARANTINE = "dash_quarantine"
QUARANTINE_SCHEMA = pa.schema(
    [("source", pa.string()), ("file", pa.string()), ("reason", pa.string()), ("row_count", pa.int64())]
)
STREAM_QUARANTINE = "stream_quarantine"


def write_snapshot(backends: Backends, name: str, rows: pa.Table) -> int:
    """Replace aggregate table `name` by `rows` and register it; returns the row count."""
    bucket = backends.settings.lake_bucket
    backends.object_store.put_bytes(f"{aggregate_location(bucket, name)}part-0.parquet", parquet_bytes(rows))
    backends.catalog.register_table(aggregate_table(bucket, name, rows.schema))
    return rows.num_rows


def read_snapshot(backends: Backends, name: str) -> pa.Table | None:
    """The current rows of aggregate table `name` (None when it is not registered or cannot be read)."""
    if name not in {t.name for t in backends.catalog.tables()}:
        return None
    try:
        return backends.catalog.query(f"SELECT * FROM {name}")
    except CatalogError:
        return None


def quarantine_counts(backends: Backends) -> pa.Table:
    """Rows refused by the batch job (per source file and reason) and by the stream (per reason). Counts
    only: the quarantined lines themselves never leave the quarantine."""
    batch = read_quarantine(backends.settings.quarantine_dir).select(["file", "reason"])
    grouped = batch.group_by(["file", "reason"]).aggregate([([], "count_all")])
    parts = [
        pa.table(
            {
                "source": pa.array(["batch"] * grouped.num_rows, pa.string()),
                "file": grouped["file"].cast(pa.string()),
                "reason": grouped["reason"].cast(pa.string()),
                "row_count": grouped["count_all"].cast(pa.int64()),
            },
            schema=QUARANTINE_SCHEMA,
        )
    ]
    if STREAM_QUARANTINE in {t.name for t in backends.catalog.tables()}:
        stream = backends.catalog.query(
            f"SELECT 'stream' AS source, 'stream' AS file, reason, CAST(count(*) AS BIGINT) AS row_count "
            f"FROM {STREAM_QUARANTINE} GROUP BY reason"
        )
        parts.append(stream.cast(QUARANTINE_SCHEMA))
    table = pa.concat_tables(parts)
    return table.sort_by([("source", "ascending"), ("row_count", "descending")]) if table.num_rows else table


def refresh_quarantine(backends: Backends) -> int:
    """Rebuild `dash_quarantine`; returns its row count."""
    return write_snapshot(backends, QUARANTINE, quarantine_counts(backends))
