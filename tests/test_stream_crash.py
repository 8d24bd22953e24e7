"""A consumer killed with SIGKILL and restarted ends with every record exactly once in an idempotent sink."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cdp.stream import Record, put_all
from cdp.stream.local import SqliteStreamLog

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

TOTAL, SHARDS, BATCH = 3000, 4, 50

# The sink is keyed by record id: an upsert, so a redelivered batch changes nothing. `deliveries` is an
# append-only log of every delivery, which shows how much was redelivered.
CONSUMER = textwrap.dedent(
    """
    import os, signal, sqlite3, sys, time
    from cdp.stream import StreamConsumer
    from cdp.stream.local import SqliteStreamLog
    stream_path, sink_path, batch_size, pause, die_after = sys.argv[1:6]
    pause, die_after = float(pause), int(die_after)
    sink = sqlite3.connect(sink_path, isolation_level=None)
    sink.execute("PRAGMA journal_mode = WAL")
    sink.execute("CREATE TABLE IF NOT EXISTS sink (id INTEGER PRIMARY KEY, body BLOB)")
    sink.execute("CREATE TABLE IF NOT EXISTS deliveries (id INTEGER)")
    batches = 0
    def handle(batch):
        global batches
        sink.execute("BEGIN IMMEDIATE")
        rows = [(int(r.partition_key.split("-")[1]), r.data) for r in batch.records]
        sink.executemany(
            "INSERT INTO sink (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
            rows,
        )
        sink.executemany("INSERT INTO deliveries (id) VALUES (?)", [(i,) for i, _ in rows])
        sink.execute("COMMIT")
        batches += 1
        if batches == die_after:  # die exactly between the sink write and the checkpoint
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(pause)  # a slow sink: most of the time is spent after the write, before the checkpoint
    log = SqliteStreamLog(stream_path, "events")
    consumer = StreamConsumer(log, "lake-writer", handle, batch_size=int(batch_size))
    consumer.run(stop_when_idle=True)
    """
)


def start_consumer(stream_path: Path, sink_path: Path, pause: float, die_after: int = 0) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            CONSUMER,
            str(stream_path),
            str(sink_path),
            str(BATCH),
            str(pause),
            str(die_after),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )


def produce(stream_path: Path) -> None:
    with SqliteStreamLog(stream_path, "events", shards=SHARDS) as log:
        put_all(log, [Record(f"tx-{i}", f"payload-{i}".encode()) for i in range(TOTAL)])


def sink_state(sink_path: Path) -> tuple[int, int, set[int]]:
    """(rows in the sink, deliveries logged, ids in the sink)."""
    with sqlite3.connect(sink_path) as sink:
        rows = sink.execute("SELECT count(*) FROM sink").fetchone()[0]
        deliveries = sink.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        ids = {row[0] for row in sink.execute("SELECT id FROM sink")}
    return rows, deliveries, ids


def sink_rows(sink_path: Path) -> int:
    try:
        with sqlite3.connect(sink_path) as sink:
            return sink.execute("SELECT count(*) FROM sink").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # not created yet


def finish_and_check(stream_path: Path, sink_path: Path) -> int:
    """Restart the consumer, let it drain the stream, check exactly-once in the sink; returns redeliveries."""
    restarted = start_consumer(stream_path, sink_path, pause=0.0)
    _, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err[-2000:]
    rows, deliveries, ids = sink_state(sink_path)
    assert rows == TOTAL and ids == set(range(TOTAL))
    redelivered = deliveries - TOTAL
    assert 0 <= redelivered <= SHARDS * BATCH  # at most the last uncheckpointed batch of each shard
    with SqliteStreamLog(stream_path, "events") as log:
        for shard in log.list_shards():
            records = log.get_records(log.get_shard_iterator(shard.shard_id, "TRIM_HORIZON")).records
            assert log.get_checkpoint("lake-writer", shard.shard_id) == records[-1].sequence_number
    return redelivered


def test_sigkill_at_a_random_moment_then_restart_processes_every_record_once(tmp_path: Path) -> None:
    stream_path, sink_path = tmp_path / "stream.sqlite", tmp_path / "sink.sqlite"
    produce(stream_path)
    victim = start_consumer(stream_path, sink_path, pause=0.02)
    deadline = time.monotonic() + 60
    while sink_rows(sink_path) < TOTAL // 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert TOTAL // 4 <= sink_rows(sink_path) < TOTAL  # it really died mid-run
    finish_and_check(stream_path, sink_path)


def test_sigkill_between_sink_write_and_checkpoint_redelivers_only_that_batch(tmp_path: Path) -> None:
    stream_path, sink_path = tmp_path / "stream.sqlite", tmp_path / "sink.sqlite"
    produce(stream_path)
    victim = start_consumer(stream_path, sink_path, pause=0.0, die_after=7)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    rows, deliveries, _ = sink_state(sink_path)
    assert rows == deliveries == 7 * BATCH
    assert finish_and_check(stream_path, sink_path) == BATCH  # exactly the one uncheckpointed batch again
