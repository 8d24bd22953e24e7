"""The stream's part of the source, kept once in the state folder for every later replay run.

The producer replays the accepted source rows at or after the split cutoff. Finding them means reading and
validating the whole transactions file (24M rows, about 45 s at full size) although the stream holds only
the newest 5%: the demo replays in three slices, and each paid that read again. The first run keeps the
rows it found in `<state>/stream-source.parquet` (the source's rows, no direct identifiers: the same
columns core banking receives); a later run reads them back when the source files (name, size,
modification time), the cutoff and the stream fraction are those it was made from, and reads the source
again otherwise. The file is replaced atomically, so a crash leaves the old cache or none.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.ibm.schema import TRANSACTIONS_SCHEMA

CACHE_FILE = "stream-source.parquet"
_KEY = b"cdp.stream_source"
_VERSION = 1  # bump when the rows kept change meaning (schema, validation rules)


def source_fingerprint(files: list[Path], cutoff: datetime, fraction: float) -> dict[str, object]:
    """What the cached rows were made from: each source file's name, size and modification time, the
    cutoff and the stream fraction."""
    stats = [(p.name, p.stat()) for p in files]
    return {
        "version": _VERSION,
        "files": [[name, st.st_size, st.st_mtime_ns] for name, st in stats],
        "cutoff": cutoff.isoformat(),
        "fraction": fraction,
    }


def read_cached(state_dir: Path, fingerprint: dict[str, object]) -> pa.Table | None:
    """The cached stream rows if they were made from `fingerprint`'s sources, else None."""
    path = state_dir / CACHE_FILE
    try:
        metadata = pq.read_schema(path).metadata or {}
        if json.loads(metadata.get(_KEY, b"null")) != fingerprint:
            return None
        table = pq.read_table(path)
    except (OSError, ValueError, pa.ArrowInvalid):  # absent, torn or foreign: read the source instead
        return None
    return table.replace_schema_metadata(None).cast(TRANSACTIONS_SCHEMA)


def write_cache(state_dir: Path, fingerprint: dict[str, object], rows: pa.Table) -> None:
    """Keep `rows` (the stream rows, in replay order) for later runs over the same sources."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path, tmp = state_dir / CACHE_FILE, state_dir / f".{CACHE_FILE}.tmp"
    table = rows.replace_schema_metadata({_KEY: json.dumps(fingerprint).encode()})
    pq.write_table(table, tmp, compression="zstd")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def discard(state_dir: Path) -> bool:
    """Drop the cache (an erasure: it holds the erased customer's source rows); the next replay reads the
    source again, where the customer's tombstone quarantines them. True when there was one."""
    try:
        (state_dir / CACHE_FILE).unlink()
    except FileNotFoundError:
        return False
    return True
