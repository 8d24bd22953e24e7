"""Idempotent Parquet writes into the lake through the object-store port.

A chunk of rows is written as one file per partition, named after the chunk (`part-<chunk>.parquet`).
Re-writing the same chunk after a crash replaces the same files, so rows are never duplicated; a manifest
object per chunk, written last, marks the chunk as done so a resumed job can skip it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.lake.tables import LakeTable
from cdp.objectstore.port import ObjectNotFoundError, ObjectStore


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def split_by_partition(table: pa.Table, keys: tuple[str, ...]) -> Iterator[tuple[tuple[Any, ...], pa.Table]]:
    """(partition values, rows) for every distinct combination of `keys`, in sorted order."""
    if not keys:
        yield (), table
        return
    groups = table.group_by(list(keys), use_threads=False).aggregate([]).sort_by([(k, "ascending") for k in keys])
    for values in groups.to_pylist():
        mask = None
        for k in keys:
            eq = pc.equal(table[k], values[k])
            mask = eq if mask is None else pc.and_(mask, eq)
        yield tuple(values[k] for k in keys), table.filter(mask)


class LakeWriter:
    """Writes lake tables under `s3://<bucket>/<table>/` with deterministic, chunk-named files."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self.store = store
        self.bucket = bucket

    def _table_uri(self, table: LakeTable) -> str:
        return table.location(self.bucket)

    def write_chunk(self, table: LakeTable, rows: pa.Table, chunk: str) -> list[str]:
        """Write `rows` as `part-<chunk>.parquet` in each of its partitions; returns the object URIs."""
        rows = rows.select(table.schema.names).cast(table.schema)
        data_columns = [n for n in table.schema.names if n not in table.partition_keys]
        uris = []
        for values, part in split_by_partition(rows, table.partition_keys):
            prefix = "".join(f"{k}={v}/" for k, v in zip(table.partition_keys, values, strict=True))
            uri = f"{self._table_uri(table)}{prefix}part-{chunk}.parquet"
            self.store.put_bytes(uri, parquet_bytes(part.select(data_columns)))
            uris.append(uri)
        return uris

    def replace_table(self, table: LakeTable, rows: pa.Table) -> str:
        """Write an unpartitioned table as one file, atomically replacing the previous version."""
        rows = rows.select(table.schema.names).cast(table.schema)
        uri = f"{self._table_uri(table)}part-0.parquet"
        self.store.put_bytes(uri, parquet_bytes(rows))
        return uri

    # -- manifests -----------------------------------------------------------------------------------
    def _manifest_uri(self, job: str, chunk: str) -> str:
        return f"s3://{self.bucket}/_manifests/{job}/{chunk}.json"

    def mark_done(self, job: str, chunk: str, record: dict[str, Any]) -> None:
        self.store.put_bytes(self._manifest_uri(job, chunk), json.dumps(record, sort_keys=True).encode())

    def done(self, job: str, chunk: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.store.get_bytes(self._manifest_uri(job, chunk)))
        except ObjectNotFoundError:
            return None

    def manifests(self, job: str) -> list[dict[str, Any]]:
        prefix = f"s3://{self.bucket}/_manifests/{job}/"
        return [
            json.loads(self.store.get_bytes(o.uri)) for o in self.store.list(prefix) if not o.uri.endswith("/_job.json")
        ]
