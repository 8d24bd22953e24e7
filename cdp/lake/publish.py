"""Publish staged chunks as a hive-partitioned table: one set of files per partition, replaced atomically.

Staged chunk files each hold rows of many partitions (the source is ordered by card, not by time).
Writing them straight into the partitions would scatter thousands of tiny files; instead DuckDB reads all
staged chunks once and writes each partition's rows together, and every partition file is then put into
the lake through the object-store port under a fixed name (`part-<label>-<n>.parquet`). Re-publishing
replaces those files and deletes any of the same label it did not write again, so it is idempotent.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import duckdb

from cdp.lake.tables import LakeTable
from cdp.objectstore.port import ObjectStore


def _local_copies(store: ObjectStore, uris: Sequence[str], workdir: Path) -> list[Path]:
    paths = []
    for i, uri in enumerate(uris):
        local = store.local_path(uri)
        if local is None:  # a remote store: download the staged chunk first
            local = workdir / "staged" / f"{i:06d}.parquet"
            store.get_file(uri, local)
        paths.append(local)
    return paths


def publish_partitioned(
    store: ObjectStore,
    table: LakeTable,
    bucket: str,
    staged: Sequence[str],
    label: str,
    where: str = "true",
    threads: int = 2,
    memory_limit: str = "4GB",
) -> int:
    """Rewrite the rows of `staged` chunk files that satisfy `where` (DuckDB SQL) as partition files of
    `table`; returns the number of files written."""
    location = table.location(bucket)
    workdir = Path(tempfile.mkdtemp(prefix="cdp-publish-"))
    written: set[str] = set()
    try:
        if staged:
            files = _local_copies(store, staged, workdir)
            listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
            out = workdir / "out"
            con = duckdb.connect()
            try:
                con.execute(f"SET threads TO {int(threads)}")
                # Bounded memory: with hundreds of partitions open DuckDB would otherwise buffer most rows.
                con.execute(f"SET memory_limit = '{memory_limit}'")
                con.execute(f"SET temp_directory = '{workdir / 'spill'}'")
                con.execute("SET preserve_insertion_order = false")
                keys = ", ".join(table.partition_keys)
                con.execute(
                    f"COPY (SELECT * FROM read_parquet([{listing}]) WHERE {where}) TO '{out}' "
                    f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000, PARTITION_BY ({keys}), "
                    "WRITE_PARTITION_COLUMNS false)"
                )
            finally:
                con.close()
            for folder in sorted({p.parent for p in out.rglob("*.parquet")}):
                relative = folder.relative_to(out).as_posix()
                for n, part in enumerate(sorted(folder.glob("*.parquet"))):
                    uri = f"{location}{relative}/part-{label}-{n}.parquet"
                    store.put_file(uri, part)
                    written.add(uri)
        # Files of this label that this publication did not write again are stale: remove them.
        for info in list(store.list(location)):
            if f"/part-{label}-" in info.uri and info.uri not in written:
                store.delete(info.uri)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return len(written)
