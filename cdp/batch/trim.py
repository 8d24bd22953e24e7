"""Leave the stream's rows out of the batch job's partition files once the stream cutoff is known.

Shards written before the cutoff was computed hold every accepted row. Files whose newest row is before
the cutoff stay as they are; a file of a month that starts at or after the cutoff holds only stream rows
and is deleted; a file of the month the cutoff falls in is rewritten without the rows at or after it.
Every step is idempotent (a rewritten file is rewritten identically, a deleted one stays deleted), so a
crash anywhere in here is mended by running the job again. Then any batch file of the table that no shard
lists any more (a stale one of an earlier layout, or of a crashed attempt) is removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.lake import tables
from cdp.lake.writer import partition_file_bytes
from cdp.objectstore.port import ObjectStore

EPOCH = datetime(1970, 1, 1)


def _seconds(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def _read(store: ObjectStore, uri: str) -> pa.Table | None:
    if not store.exists(uri):
        return None
    local = store.local_path(uri)
    return pq.read_table(local if local is not None else pa.BufferReader(store.get_bytes(uri)))


def trim_to_cutoff(
    store: ObjectStore, files: Sequence[dict[str, Any]], cutoff: datetime, dictionary_columns: Sequence[str]
) -> list[dict[str, Any]]:
    """The batch `files` with no row at or after `cutoff` (deleting or rewriting those that had some);
    returns the files that remain, with their row counts."""
    table = tables.TRANSACTIONS
    data_schema = pa.schema(
        [table.schema.field(n) for n in table.schema.names if n not in table.partition_keys]
    )
    cut = _seconds(cutoff)
    kept = []
    for f in files:
        if f["max_ts"] < cut:
            kept.append(f)
            continue
        if _seconds(datetime(f["year"], f["month"], 1)) >= cut:
            store.delete(f["uri"])
            continue
        rows = _read(store, f["uri"])
        if rows is None:  # emptied and deleted by an earlier, interrupted trim
            continue
        rows = rows.cast(data_schema)
        before = rows.filter(pc.less(rows["ts"], pa.scalar(cutoff, pa.timestamp("s"))))
        if before.num_rows == 0:
            store.delete(f["uri"])
            continue
        if before.num_rows < rows.num_rows:
            store.put_bytes(f["uri"], partition_file_bytes(before, dictionary_columns))
        max_ts = pc.max(before["ts"]).cast(pa.int64()).as_py()
        kept.append({**f, "rows": before.num_rows, "max_ts": max_ts})
    return kept


def remove_stale_files(store: ObjectStore, bucket: str, label: str, keep: set[str]) -> int:
    """Delete the table's `part-<label>-*` files not in `keep`; returns how many."""
    removed = 0
    for info in list(store.list(tables.TRANSACTIONS.location(bucket))):
        if f"/part-{label}-" in info.uri and info.uri not in keep:
            store.delete(info.uri)
            removed += 1
    return removed
