"""Behaviour specific to the local SQLite stream log: durability, retention, iterators, concurrency."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cdp.settings import Settings
from cdp.stream import Batch, Record, StreamConsumer
from cdp.stream.local import SEQUENCE_DIGITS, SqliteStreamLog
from cdp.stream.port import (
    MAX_RECORDS_PER_GET,
    ExpiredIteratorError,
    GetRecordsResult,
    InvalidIteratorError,
    ShardNotFoundError,
)


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_sequence_numbers_are_fixed_width_digits_that_sort_as_strings(tmp_path: Path) -> None:
    with SqliteStreamLog(tmp_path / "s.sqlite", "events", shards=2) as log:
        sequences = [
            r.sequence_number for r in log.put_records([Record(str(i), b"x") for i in range(300)]).records
        ]
    assert all(s.isdigit() and len(s) == SEQUENCE_DIGITS for s in sequences)
    assert sequences == sorted(sequences) == sorted(sequences, key=int)


def test_records_and_checkpoints_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with SqliteStreamLog(path, "events", shards=3) as log:
        log.put_records([Record(f"k{i}", f"{i}".encode()) for i in range(50)])
        log.checkpoint("lake", "shardId-000000000001", "00000000000000000007")
    with SqliteStreamLog(path, "events") as reopened:
        assert len(reopened.list_shards()) == 3
        assert reopened.get_checkpoint("lake", "shardId-000000000001") == "00000000000000000007"
        total = 0
        for shard in reopened.list_shards():
            total += len(
                reopened.get_records(reopened.get_shard_iterator(shard.shard_id, "TRIM_HORIZON")).records
            )
        assert total == 50
    with pytest.raises(ValueError, match="resharding"):
        SqliteStreamLog(path, "events", shards=5)


def test_two_streams_share_a_file_without_seeing_each_other(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with SqliteStreamLog(path, "a", shards=1) as a, SqliteStreamLog(path, "b", shards=1) as b:
        a.put_records([Record("k", b"from-a")])
        b.put_records([Record("k", b"from-b")])
        page = a.get_records(a.get_shard_iterator("shardId-000000000000", "TRIM_HORIZON"))
        assert [r.data for r in page.records] == [b"from-a"]
        with pytest.raises(InvalidIteratorError):
            b.get_records(a.get_shard_iterator("shardId-000000000000", "TRIM_HORIZON"))


def test_bad_iterators_and_unknown_shards_are_rejected(tmp_path: Path) -> None:
    with SqliteStreamLog(tmp_path / "s.sqlite", "events", shards=1) as log:
        for garbage in ["", "not-base64!", "djE=", "x" * 40]:
            with pytest.raises(InvalidIteratorError):
                log.get_records(garbage)
        with pytest.raises(ShardNotFoundError):
            log.get_shard_iterator("shardId-000000000009", "TRIM_HORIZON")
        with pytest.raises(ValueError):
            log.get_shard_iterator("shardId-000000000000", "AT_SEQUENCE_NUMBER", sequence_number="12a")
        with pytest.raises(ValueError):
            log.get_shard_iterator("shardId-000000000000", "SOMEWHERE")


def test_retention_trims_only_old_records_and_never_reuses_sequence_numbers(tmp_path: Path) -> None:
    clock = FakeClock()
    with SqliteStreamLog(tmp_path / "s.sqlite", "events", shards=2, clock=clock) as log:
        old = log.put_records([Record(f"k{i}", b"old") for i in range(40)])
        clock.now += 20 * 3600
        log.put_records([Record(f"k{i}", b"new") for i in range(10)])
        clock.now += 5 * 3600  # old records are now 25 h old, new ones 5 h
        assert log.trim(retention_hours=24) == 40
        remaining = [
            r
            for shard in log.list_shards()
            for r in log.get_records(log.get_shard_iterator(shard.shard_id, "TRIM_HORIZON")).records
        ]
        assert [r.data for r in remaining] == [b"new"] * 10
        assert log.trim(retention_hours=1) == 10
        fresh = log.put_records([Record("k0", b"after")])
        assert int(fresh.records[0].sequence_number) > max(int(r.sequence_number) for r in old.records) + 10


def test_millis_behind_latest_measures_the_gap_to_the_tip(tmp_path: Path) -> None:
    clock = FakeClock()
    with SqliteStreamLog(tmp_path / "s.sqlite", "events", shards=1, clock=clock) as log:
        log.put_records([Record("k", b"1")])
        clock.now += 3.0
        log.put_records([Record("k", b"2")])
        page = log.get_records(log.get_shard_iterator("shardId-000000000000", "TRIM_HORIZON"), limit=1)
        assert page.millis_behind_latest == 3000
        assert log.get_records(page.next_iterator, limit=10).millis_behind_latest == 0


def test_arrival_times_never_go_backwards_when_the_clock_does(tmp_path: Path) -> None:
    clock = FakeClock()
    with SqliteStreamLog(tmp_path / "s.sqlite", "events", shards=1, clock=clock) as log:
        log.put_records([Record("k", b"1")])
        clock.now -= 60
        log.put_records([Record("k", b"2")])
        records = log.get_records(log.get_shard_iterator("shardId-000000000000", "TRIM_HORIZON")).records
        assert records[1].approximate_arrival_timestamp >= records[0].approximate_arrival_timestamp


def test_from_settings_puts_the_log_under_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, stream_name="tx")
    with SqliteStreamLog.from_settings(settings) as log:
        assert log.stream_name == "tx"
        assert log.path == settings.state_dir / "stream.sqlite"
        assert log.path.exists()


PRODUCER = textwrap.dedent(
    """
    import os, sys, time
    from cdp.stream import Record
    from cdp.stream.local import SqliteStreamLog
    path, total, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    log = SqliteStreamLog(path, "events")
    deadline = time.monotonic() + 60
    while not os.path.exists(ready) and time.monotonic() < deadline:
        time.sleep(0.01)  # start once the consumer is polling, so the two overlap
    for start in range(0, total, 200):
        batch = range(start, min(start + 200, total))
        log.put_records([Record(f"card-{i % 23}", f"{i}".encode()) for i in batch])
        time.sleep(0.015)
    open(ready + ".done", "w").close()
    """
)

CONSUMER = textwrap.dedent(
    """
    import os, sqlite3, sys, time
    from cdp.stream import StreamConsumer
    from cdp.stream.local import SqliteStreamLog
    path, sink_path, total, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    sink = sqlite3.connect(sink_path, isolation_level=None)
    sink.execute("CREATE TABLE seen (id INTEGER PRIMARY KEY, partition_key TEXT, shard TEXT, seq TEXT)")
    def handle(batch):
        sink.execute("BEGIN")
        rows = [(int(r.data), r.partition_key, batch.shard_id, r.sequence_number) for r in batch.records]
        sink.executemany("INSERT INTO seen VALUES (?, ?, ?, ?)", rows)
        sink.execute("COMMIT")
    consumer = StreamConsumer(SqliteStreamLog(path, "events"), "sink", handle, batch_size=300)
    open(ready, "w").close()
    deadline, count, overlapped = time.monotonic() + 120, 0, 0
    while count < total and time.monotonic() < deadline:
        got = consumer.poll()
        count += got
        if got and not os.path.exists(ready + ".done"):
            overlapped += got  # handled while the producer was still writing
        if not got:
            time.sleep(0.01)
    print(count, overlapped)
    """
)


def test_a_producer_and_a_consumer_process_work_on_the_log_at_the_same_time(tmp_path: Path) -> None:
    path, sink_path, ready, total = (
        tmp_path / "s.sqlite",
        tmp_path / "sink.sqlite",
        tmp_path / "ready",
        20_000,
    )
    SqliteStreamLog(path, "events", shards=4).close()
    consumer = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, str(path), str(sink_path), str(total), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    producer = subprocess.run(
        [sys.executable, "-c", PRODUCER, str(path), str(total), str(ready)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert producer.returncode == 0, producer.stderr[-2000:]
    out, err = consumer.communicate(timeout=180)
    assert consumer.returncode == 0, err[-2000:]
    count, overlapped = map(int, out.split())
    assert count == total  # a primary-key clash in the sink would have crashed the consumer
    assert overlapped > 0
    sink = sqlite3.connect(sink_path)
    assert sink.execute("SELECT count(*), min(id), max(id) FROM seen").fetchone() == (total, 0, total - 1)
    rows = sink.execute(
        "SELECT partition_key, shard, seq, id FROM seen ORDER BY partition_key, id"
    ).fetchall()
    last: dict[str, tuple[str, int]] = {}
    for key, shard, seq, _ in rows:
        if key in last:
            assert last[key][0] == shard and int(seq) > last[key][1]  # per-key order kept across processes
        last[key] = (shard, int(seq))


class ExpiringLog:
    """A log whose `get_records` calls listed in `expire_on` (1-based) fail with an expired iterator."""

    def __init__(self, log: SqliteStreamLog, expire_on: set[int]) -> None:
        self.log, self.expire_on, self.calls = log, expire_on, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.log, name)

    def get_records(self, iterator: str, limit: int = MAX_RECORDS_PER_GET) -> GetRecordsResult:
        self.calls += 1
        if self.calls in self.expire_on:
            raise ExpiredIteratorError("shard iterator expired")
        return self.log.get_records(iterator, limit)


def test_the_consumer_renews_an_expired_iterator_from_its_checkpoint(tmp_path: Path) -> None:
    with SqliteStreamLog(tmp_path / "s.sqlite", "events", shards=1) as log:
        sequence = [
            r.sequence_number for r in log.put_records([Record("k", b"%d" % i) for i in range(9)]).records
        ]
        calls: list[list[int]] = []

        def partly(batch: Batch) -> str | None:
            calls.append([int(r.data) for r in batch.records])
            return batch.records[1].sequence_number if len(calls) == 2 else None

        expiring = ExpiringLog(log, expire_on={2, 4})
        consumer = StreamConsumer(expiring, "sink", partly, batch_size=3)  # type: ignore[arg-type]
        consumer.run(stop_when_idle=True)
        assert log.get_checkpoint("sink", "shardId-000000000000") == sequence[-1]
    # renewed after a full batch (from 2) and a partial checkpoint (from 3): only 4, 5 come twice, as asked
    assert calls == [[0, 1, 2], [3, 4, 5], [4, 5, 6], [7, 8]]
