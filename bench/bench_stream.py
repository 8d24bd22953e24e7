"""Stream log throughput: batched appends and get_records reads of the local SQLite log, side by side with
raw SQLite inserts/selects of the same rows in the same process (the floor our bookkeeping adds to).

Targets on one core: append >= 50k records/s (500 per put), read >= 100k records/s.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import Measurement, measure, print_table, write_result
from cdp.stream.local import SqliteStreamLog
from cdp.stream.port import Record

RECORDS = 200_000
BATCH = 500
SHARDS = 4
READ_LIMIT = 10_000
APPEND_TARGET = 50_000
READ_TARGET = 100_000


def make_records(count: int) -> list[Record]:
    """Transaction-sized records (~190 bytes) keyed by card, like the replayed stream."""
    return [
        Record(
            f"{i % 2000}-{i % 3}",
            (
                f'{{"transaction_id":"{i:012d}","user":{i % 2000},"card":{i % 3},'
                f'"ts":"2019-11-0{i % 9 + 1}T12:00",'
                f'"amount":{(i * 37) % 100000 / 100:.2f},"use_chip":"Chip Transaction","mcc":5411,'
                f'"merchant":"{(i * 7919) % 10**9}","errors":""}}'
            ).encode(),
        )
        for i in range(count)
    ]


def stream_append(path: Path, records: list[Record]) -> dict[str, Any]:
    with SqliteStreamLog(path, "bench", shards=SHARDS) as log:
        for start in range(0, len(records), BATCH):
            log.put_records(records[start : start + BATCH])
    return {}


def stream_read(path: Path) -> dict[str, Any]:
    count = 0
    with SqliteStreamLog(path, "bench") as log:
        for shard in log.list_shards():
            iterator = log.get_shard_iterator(shard.shard_id, "TRIM_HORIZON")
            while True:
                page = log.get_records(iterator, READ_LIMIT)
                if not page.records:
                    break
                count += len(page.records)
                iterator = page.next_iterator
    return {"records": count}


def raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def raw_insert(path: Path, records: list[Record]) -> dict[str, Any]:
    conn = raw_connection(path)
    conn.execute("CREATE TABLE r (seq INTEGER PRIMARY KEY, partition_key TEXT, data BLOB)")
    for start in range(0, len(records), BATCH):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO r (partition_key, data) VALUES (?, ?)",
            [(r.partition_key, r.data) for r in records[start : start + BATCH]],
        )
        conn.execute("COMMIT")
    conn.close()
    return {}


def raw_select(path: Path) -> dict[str, Any]:
    conn = raw_connection(path)
    cursor = conn.execute("SELECT seq, partition_key, data FROM r ORDER BY seq")
    count = 0
    while rows := cursor.fetchmany(READ_LIMIT):
        count += len(rows)
    conn.close()
    return {"records": count}


def timed(label: str, fn: Callable[[], dict[str, Any]]) -> Measurement:
    """`measure`, plus the CPU seconds of this process (the fair figure on a shared machine)."""

    def run() -> dict[str, Any]:
        cpu = time.process_time()
        extra = fn()
        return {**extra, "cpu_seconds": time.process_time() - cpu}

    return measure(label, run)


def compare(operation: str, ours: Measurement, raw: Measurement, target: int) -> dict[str, Any]:
    wall, cpu = RECORDS / ours.seconds, RECORDS / ours.extra["cpu_seconds"]
    return {
        "operation": operation,
        "stream rec/s": round(wall),
        "stream rec/cpu-s": round(cpu),
        "raw sqlite rec/s": round(RECORDS / raw.seconds),
        "stream / raw": round(raw.seconds / ours.seconds, 3),
        "target rec/s": target,
        "met": wall >= target,
    }


def main() -> dict[str, Any]:
    records = make_records(RECORDS)
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as folder:
        root = Path(folder)
        append = timed("stream append", lambda: stream_append(root / "stream.sqlite", records))
        read = timed("stream read", lambda: stream_read(root / "stream.sqlite"))
        base_insert = timed("raw insert", lambda: raw_insert(root / "raw.sqlite", records))
        base_select = timed("raw select", lambda: raw_select(root / "raw.sqlite"))
    assert read.extra["records"] == base_select.extra["records"] == RECORDS
    rows = [
        compare(f"append ({BATCH}/put)", append, base_insert, APPEND_TARGET),
        compare(f"read (get_records {READ_LIMIT:,})", read, base_select, READ_TARGET),
    ]
    result = {
        "records": RECORDS,
        "batch": BATCH,
        "shards": SHARDS,
        "rows": rows,
        "peak_memory_mb": round(max(m.peak_memory_bytes for m in (append, read)) / 2**20, 1),
    }
    write_result("stream", result)
    print_table(f"Stream log: {RECORDS:,} records, {SHARDS} shards", rows)
    return result


if __name__ == "__main__":
    main()
