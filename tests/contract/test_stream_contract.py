"""Contract of the stream port, run against both adapters: the local SQLite log and Kinesis (moto)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from cdp.settings import Settings
from cdp.stream import Batch, EventStream, IteratorType, Record, StreamConsumer, put_all
from cdp.stream.dynamodb_checkpoints import DynamoDbCheckpoints
from cdp.stream.kinesis import KinesisStream
from cdp.stream.local import SqliteStreamLog
from cdp.stream.port import InvalidRecordError, hash_key

SHARDS = 4
REGION = "eu-west-1"


@pytest.fixture(params=["local", "kinesis"])
def stream(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[EventStream]:
    if request.param == "local":
        log = SqliteStreamLog(tmp_path / "stream.sqlite", "events", shards=SHARDS)
        yield log
        log.close()
        return
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name=REGION)
        kinesis.create_stream(StreamName="events", ShardCount=SHARDS)
        kinesis.get_waiter("stream_exists").wait(StreamName="events")
        checkpoints = DynamoDbCheckpoints(
            boto3.client("dynamodb", region_name=REGION), "checkpoints", "events"
        )
        yield KinesisStream(kinesis, "events", checkpoints)


def read_shard(stream: EventStream, shard_id: str, iterator: str, limit: int = 1000) -> list:
    """Every record from the iterator to the tip."""
    records = []
    while True:
        page = stream.get_records(iterator, limit)
        records.extend(page.records)
        if not page.records or page.next_iterator is None:
            return records
        iterator = page.next_iterator


def read_all(stream: EventStream) -> dict[str, list]:
    return {
        shard.shard_id: read_shard(
            stream, shard.shard_id, stream.get_shard_iterator(shard.shard_id, "TRIM_HORIZON")
        )
        for shard in stream.list_shards()
    }


def numbered(count: int, keys: int = 13, start: int = 0) -> list[Record]:
    return [Record(f"card-{i % keys}", f"{i}".encode()) for i in range(start, start + count)]


def test_adapter_satisfies_the_port(stream: EventStream) -> None:
    assert isinstance(stream, EventStream)


def test_shards_split_the_hash_key_space_evenly(stream: EventStream) -> None:
    shards = stream.list_shards()
    assert len(shards) == SHARDS
    assert shards[0].starting_hash_key == 0
    assert shards[-1].ending_hash_key == 2**128 - 1
    for left, right in zip(shards, shards[1:], strict=False):
        assert right.starting_hash_key == left.ending_hash_key + 1


def test_a_partition_key_always_lands_on_the_shard_owning_its_md5(stream: EventStream) -> None:
    shards = stream.list_shards()
    result = stream.put_records([Record(f"user-{i % 20}", b"x") for i in range(200)])
    assert result.failed_record_count == 0
    seen: dict[str, str] = {}
    for i, outcome in enumerate(result.records):
        key = f"user-{i % 20}"
        assert seen.setdefault(key, outcome.shard_id) == outcome.shard_id
        owner = next(s for s in shards if s.starting_hash_key <= hash_key(key) <= s.ending_hash_key)
        assert outcome.shard_id == owner.shard_id
    assert len(set(seen.values())) > 1  # 20 keys spread over more than one shard


def test_records_read_back_in_put_order_within_each_shard(stream: EventStream) -> None:
    put = [r for batch in range(3) for r in stream.put_records(numbered(150, start=batch * 150)).records]
    by_shard = read_all(stream)
    assert sum(len(records) for records in by_shard.values()) == 450
    per_key: dict[str, list[int]] = defaultdict(list)
    for shard_id, records in by_shard.items():
        sequences = [int(r.sequence_number) for r in records]
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
        for record in records:
            per_key[record.partition_key].append(int(record.data))
            assert record.approximate_arrival_timestamp.tzinfo is not None
        put_here = [p.sequence_number for p in put if p.shard_id == shard_id]
        assert [r.sequence_number for r in records] == put_here
    for key, values in per_key.items():
        assert values == sorted(values), key
    assert sorted(v for values in per_key.values() for v in values) == list(range(450))


def test_iterator_types_position_where_kinesis_would(stream: EventStream) -> None:
    first = stream.put_records([Record("same-key", f"a{i}".encode()) for i in range(5)])
    shard_id = first.records[0].shard_id
    sequences = [r.sequence_number for r in first.records]
    latest = stream.get_shard_iterator(shard_id, IteratorType.LATEST)

    at = stream.get_shard_iterator(shard_id, "AT_SEQUENCE_NUMBER", sequence_number=sequences[2])
    assert [r.data for r in read_shard(stream, shard_id, at)] == [b"a2", b"a3", b"a4"]
    after = stream.get_shard_iterator(shard_id, "AFTER_SEQUENCE_NUMBER", sequence_number=sequences[2])
    assert [r.data for r in read_shard(stream, shard_id, after)] == [b"a3", b"a4"]

    assert stream.get_records(latest, 100).records == []
    time.sleep(0.05)
    boundary = datetime.now(UTC)
    time.sleep(0.05)
    stream.put_records([Record("same-key", f"b{i}".encode()) for i in range(3)])
    assert [r.data for r in read_shard(stream, shard_id, latest)] == [b"b0", b"b1", b"b2"]
    at_time = stream.get_shard_iterator(shard_id, "AT_TIMESTAMP", timestamp=boundary)
    assert [r.data for r in read_shard(stream, shard_id, at_time)] == [b"b0", b"b1", b"b2"]
    horizon = stream.get_shard_iterator(shard_id, "TRIM_HORIZON")
    assert len(read_shard(stream, shard_id, horizon)) == 8


def test_get_records_pages_by_limit_and_reports_caught_up(stream: EventStream) -> None:
    result = stream.put_records([Record("k", f"{i}".encode()) for i in range(25)])
    shard_id = result.records[0].shard_id
    iterator = stream.get_shard_iterator(shard_id, "TRIM_HORIZON")
    sizes = []
    while True:
        page = stream.get_records(iterator, 10)
        if not page.records:
            assert page.millis_behind_latest == 0
            break
        sizes.append(len(page.records))
        iterator = page.next_iterator
    assert sizes == [10, 10, 5]


def test_batch_limits_are_enforced_before_sending(stream: EventStream) -> None:
    with pytest.raises(InvalidRecordError):
        stream.put_records(numbered(501))
    with pytest.raises(InvalidRecordError, match="record 1"):
        stream.put_records([Record("ok", b"x"), Record("", b"secret-value")])
    with pytest.raises(InvalidRecordError):
        stream.put_records([])


def test_checkpoints_are_per_consumer_and_shard(stream: EventStream) -> None:
    shard_a, shard_b = (s.shard_id for s in stream.list_shards()[:2])
    assert stream.get_checkpoint("fraud", shard_a) is None
    stream.checkpoint("fraud", shard_a, "17")
    stream.checkpoint("fraud", shard_a, "42")
    stream.checkpoint("lake", shard_a, "5")
    assert stream.get_checkpoint("fraud", shard_a) == "42"
    assert stream.get_checkpoint("lake", shard_a) == "5"
    assert stream.get_checkpoint("fraud", shard_b) is None


def test_consumer_resumes_from_its_checkpoints_without_loss_or_repeat(stream: EventStream) -> None:
    put_all(stream, numbered(1200, keys=31))
    seen: list[int] = []

    def sink(batch: Batch) -> None:
        seen.extend(int(r.data) for r in batch.records)

    first = StreamConsumer(stream, "lake", sink, batch_size=100)
    assert first.poll() == 400  # one batch of 100 from each of the 4 shards
    second = StreamConsumer(stream, "lake", sink, batch_size=100)  # a restart: state from checkpoints only
    assert second.run(stop_when_idle=True) == 800
    assert sorted(seen) == list(range(1200))
    for shard in stream.list_shards():
        tip = read_shard(stream, shard.shard_id, stream.get_shard_iterator(shard.shard_id, "TRIM_HORIZON"))
        assert stream.get_checkpoint("lake", shard.shard_id) == tip[-1].sequence_number


def test_a_failing_handler_does_not_checkpoint_and_the_batch_comes_back(stream: EventStream) -> None:
    stream.put_records([Record("one-key", f"{i}".encode()) for i in range(30)])
    calls: list[list[int]] = []

    def flaky(batch: Batch) -> None:
        calls.append([int(r.data) for r in batch.records])
        if len(calls) == 1:
            raise RuntimeError("sink unavailable")

    consumer = StreamConsumer(stream, "alerts", flaky, batch_size=10)
    with pytest.raises(RuntimeError):
        consumer.poll()
    assert all(stream.get_checkpoint("alerts", s.shard_id) is None for s in stream.list_shards())
    consumer.run(stop_when_idle=True)
    assert calls[0] == calls[1] == list(range(10))
    assert [v for batch in calls[1:] for v in batch] == list(range(30))


def one_shard_of(stream: EventStream, count: int) -> tuple[str, list[str]]:
    """Put `count` records under one key; their shard and sequence numbers, in order."""
    put = stream.put_records([Record("one-key", f"{i}".encode()) for i in range(count)]).records
    return str(put[0].shard_id), [str(r.sequence_number) for r in put]


def test_a_handle_can_checkpoint_part_of_a_batch_and_read_the_rest_again(stream: EventStream) -> None:
    shard, sequence = one_shard_of(stream, 30)
    calls: list[list[int]] = []
    checkpoints: list[str | None] = []

    def partly(batch: Batch) -> str | None:
        calls.append([int(r.data) for r in batch.records])
        checkpoints.append(stream.get_checkpoint("alerts", shard))
        return sequence[4] if len(calls) == 1 else None  # done up to record 3: read again from record 4

    consumer = StreamConsumer(stream, "alerts", partly, batch_size=10)
    assert consumer.poll() == 10  # records handed over, the re-read ones included
    assert stream.get_checkpoint("alerts", shard) == sequence[3]
    restarted = StreamConsumer(stream, "alerts", partly, batch_size=10)  # the partial checkpoint is durable
    assert restarted.run(stop_when_idle=True) == 26
    assert calls[1] == list(range(4, 14))  # the re-read starts at the record handle returned
    assert [v for batch in calls[1:] for v in batch] == list(range(4, 30))
    assert checkpoints == [None, sequence[3], sequence[13], sequence[23]]
    assert stream.get_checkpoint("alerts", shard) == sequence[-1]


def test_a_handle_returning_its_first_record_reads_the_same_batch_again(stream: EventStream) -> None:
    shard, sequence = one_shard_of(stream, 12)
    calls: list[list[int]] = []

    def not_yet(batch: Batch) -> str | None:
        calls.append([int(r.data) for r in batch.records])
        return batch.records[0].sequence_number if len(calls) < 3 else None

    consumer = StreamConsumer(stream, "alerts", not_yet, batch_size=5)
    consumer.run(stop_when_idle=True)  # a re-read is not idle: the loop goes on until the shard is done
    assert calls[:3] == [[0, 1, 2, 3, 4]] * 3
    assert [v for batch in calls[2:] for v in batch] == list(range(12))
    assert stream.get_checkpoint("alerts", shard) == sequence[-1]


def test_a_handle_returning_a_record_outside_its_batch_checkpoints_nothing(stream: EventStream) -> None:
    shard, sequence = one_shard_of(stream, 12)
    calls: list[list[int]] = []

    def confused(batch: Batch) -> str | None:
        calls.append([int(r.data) for r in batch.records])
        return sequence[-1] if len(calls) == 1 else None  # record 11 is not in the first batch of 5

    consumer = StreamConsumer(stream, "alerts", confused, batch_size=5)
    with pytest.raises(ValueError, match="not in the batch"):
        consumer.poll()
    assert stream.get_checkpoint("alerts", shard) is None
    consumer.run(stop_when_idle=True)
    assert calls[0] == calls[1] == [0, 1, 2, 3, 4]
    assert [v for batch in calls[1:] for v in batch] == list(range(12))


def test_put_all_splits_large_inputs_into_batches(stream: EventStream) -> None:
    results = put_all(stream, numbered(1234))
    assert len(results) == 1234 and all(r.sequence_number for r in results)
    assert sum(len(records) for records in read_all(stream).values()) == 1234


def test_aws_adapter_from_settings_reaches_the_same_stream(stream: EventStream, tmp_path) -> None:
    if not isinstance(stream, KinesisStream):
        pytest.skip("the local factory is covered in test_stream_local.py")
    settings = Settings(home=tmp_path, stream_name="events", aws_region=REGION, dynamodb_table_prefix="t-")
    other = KinesisStream.from_settings(settings)
    put = other.put_records([Record("k", b"via-settings")]).records[0]
    iterator = stream.get_shard_iterator(put.shard_id, "AT_SEQUENCE_NUMBER", put.sequence_number)
    assert stream.get_records(iterator, 1).records[0].data == b"via-settings"
    other.checkpoint("c", put.shard_id, put.sequence_number)
    assert other.get_checkpoint("c", put.shard_id) == put.sequence_number
