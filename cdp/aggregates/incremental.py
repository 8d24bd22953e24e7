"""Refresh an aggregate table month by month: recompute only the months whose source files changed.

Every aggregate row comes from source rows of one calendar month (its `time_column`), and the sources are
partitioned by the event's month, so the rows of a month depend on that month's partition only. A refresh
reads the changed months' files (the columns the aggregates use), runs the aggregate's own SQL over them in
an in-process DuckDB, and replaces those months' rows in the current table; the other rows are kept as they
are. The slice is small (a stream landing touches a few months), so this costs seconds where a rebuild
reads the whole lake; a full rebuild in the catalog's engine remains the way when there is no watermark.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cdp.aggregates.locations import aggregate_location, aggregate_table
from cdp.aggregates.watermarks import MONTH_KEYS
from cdp.catalog.port import TableInfo

if TYPE_CHECKING:
    from cdp.aggregates.definitions import Aggregate
    from cdp.aggregates.watermarks import Month, MonthListing
    from cdp.backends import Backends
    from cdp.objectstore.port import ObjectStore

ENGINE_MEMORY_LIMIT = "1GB"
ORPHAN_AGE = timedelta(minutes=30)  # files under a table's folder but not its location, older than this


class IncrementalUnavailable(RuntimeError):
    """The months cannot be merged into the current table (the caller rebuilds it in full)."""


def month_condition(months: Iterable[Month], year_sql: str, month_sql: str) -> str:
    """An SQL condition true for the rows whose year and month expressions name one of `months`."""
    keys = ", ".join(str(y * 100 + m) for y, m in sorted(months))
    return f"(CAST({year_sql} AS INTEGER) * 100 + CAST({month_sql} AS INTEGER)) IN ({keys})"


def _read_object(store: ObjectStore, uri: str, columns: Iterable[str] | None = None) -> pa.Table:
    data = store.get_bytes(uri)
    parquet = pq.ParquetFile(pa.BufferReader(data))
    wanted = None if columns is None else [c for c in columns if c in parquet.schema_arrow.names]
    return parquet.read(columns=wanted)


def read_months(
    store: ObjectStore,
    listing: MonthListing,
    months: Iterable[Month],
    source: TableInfo,
    columns: Iterable[str],
) -> pa.Table:
    """The rows of `source` in `months` (only `columns`, and the partition's `year` and `month`), read
    from the listed files: exactly the files whose fingerprints the watermark will hold, whatever lands
    meanwhile."""
    columns = [c for c in columns if c in source.schema.names and c not in MONTH_KEYS]
    parts = []
    for year, month in sorted(months):
        for info in listing.objects.get((year, month), ()):
            rows = _read_object(store, info.uri, columns)
            parts.append(
                rows.append_column("year", pa.array([year] * rows.num_rows, pa.int32())).append_column(
                    "month", pa.array([month] * rows.num_rows, pa.int32())
                )
            )
    if not parts:
        empty = source.schema.empty_table().select(columns)
        return empty.append_column("year", pa.array([], pa.int32())).append_column(
            "month", pa.array([], pa.int32())
        )
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except pa.ArrowException as e:
        raise IncrementalUnavailable(f"the files of {source.name} do not share a schema: {e}") from None


def read_table(backends: Backends, name: str) -> pa.Table:
    """The current rows of aggregate table `name`, read from the files at its registered location."""
    info = {t.name: t for t in backends.catalog.tables()}.get(name)
    if info is None:
        raise IncrementalUnavailable(f"{name} is not registered")
    store = backends.object_store
    parts = [_read_object(store, o.uri) for o in store.list(info.location) if not o.uri.endswith("/")]
    if not parts:
        raise IncrementalUnavailable(f"{name} has no file")
    return pa.concat_tables(parts, promote_options="permissive")


def merged_rows(
    aggregate: Aggregate, current: pa.Table, source_rows: pa.Table, months: set[Month]
) -> pa.Table:
    """`current` without the rows of `months`, plus the aggregate's rows over `source_rows` (the source's
    rows of those months), in `current`'s schema."""
    source = aggregate.sources[0]
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{ENGINE_MEMORY_LIMIT}'")
        con.register(source, source_rows)
        fresh = con.sql(aggregate.sql).to_arrow_table()
        if fresh.schema.names != current.schema.names:
            raise IncrementalUnavailable(f"{aggregate.name}: its columns changed")
        con.register("current_rows", current)
        column = f'"{aggregate.time_column}"'
        keep = month_condition(months, f"extract(year FROM {column})", f"extract(month FROM {column})")
        kept = con.sql(f"SELECT * FROM current_rows WHERE NOT {keep}").to_arrow_table()
    except duckdb.Error as e:
        raise IncrementalUnavailable(f"{aggregate.name}: {str(e).splitlines()[0] if str(e) else e}") from None
    finally:
        con.close()
    try:
        return pa.concat_tables([kept.cast(current.schema), fresh.cast(current.schema)])
    except (pa.ArrowException, ValueError) as e:
        raise IncrementalUnavailable(f"{aggregate.name}: {e}") from None


def _in_location(uri: str, location: str, base: str) -> bool:
    """Whether object `uri` belongs to a table at `location` (at the table's `base` folder itself: only the
    objects directly in it, not those of its `run=` prefixes)."""
    if location == base:
        return uri.startswith(base) and "/" not in uri[len(base) :]
    return uri.startswith(location)


def replace_table(backends: Backends, name: str, rows: pa.Table) -> int:
    """Write `rows` as aggregate table `name` under a fresh prefix of its location, switch the catalog to
    it (readers see the old rows or the new), then delete the files of the location it had before and
    those left under its folder by writers that stopped over `ORPHAN_AGE` ago (a concurrent refresh's
    fresh files are kept). Returns the row count."""
    from cdp.lake.writer import parquet_bytes

    bucket, store, catalog = backends.settings.lake_bucket, backends.object_store, backends.catalog
    base = aggregate_location(bucket, name)
    previous = {t.name: t.location for t in catalog.tables()}.get(name)
    prefix = f"{base}run={uuid.uuid4().hex[:12]}/"
    store.put_bytes(f"{prefix}part-0.parquet", parquet_bytes(rows))
    table = aggregate_table(bucket, name, rows.schema)
    catalog.register_table(TableInfo(table.name, prefix, table.schema, table.partition_keys))
    cutoff = datetime.now(UTC) - ORPHAN_AGE
    for old in list(store.list(base)):
        if old.uri.startswith(prefix):
            continue
        if (previous is not None and _in_location(old.uri, previous, base)) or old.last_modified < cutoff:
            store.delete(old.uri)
    return rows.num_rows
