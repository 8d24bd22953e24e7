"""The event-stream port: a short Protocol with Kinesis semantics, and the value types it speaks.

Adapters: `SqliteStreamLog` (local, embedded) and `KinesisStream` (AWS). Business code depends only on
`EventStream` and the types below, never on an adapter.

Kinesis rules that both adapters honour, so code written against one runs on the other:
- a record goes to the shard whose hash-key range holds MD5(partition key) read as a 128-bit integer;
- sequence numbers are strings of digits, increasing within a shard; compare them with `int()`;
- one `put_records` call takes at most 500 records, each at most 1 MiB, partition keys 1..256 characters;
- `get_records` returns at most 10,000 records per call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol, runtime_checkable

MAX_RECORDS_PER_PUT = 500
MAX_RECORD_BYTES = 1024 * 1024
MAX_PARTITION_KEY_CHARS = 256
MAX_RECORDS_PER_GET = 10_000
HASH_KEY_SPACE = 2**128


class IteratorType(StrEnum):
    """Where a shard iterator starts (the Kinesis `ShardIteratorType` values)."""

    TRIM_HORIZON = "TRIM_HORIZON"
    LATEST = "LATEST"
    AT_SEQUENCE_NUMBER = "AT_SEQUENCE_NUMBER"
    AFTER_SEQUENCE_NUMBER = "AFTER_SEQUENCE_NUMBER"
    AT_TIMESTAMP = "AT_TIMESTAMP"


@dataclass(frozen=True, slots=True)
class Record:
    """A record to put: the partition key picks the shard; data is opaque bytes."""

    partition_key: str
    data: bytes


class PutRecordResult(NamedTuple):
    """Where one put record landed, or why it failed (then shard_id and sequence_number are None).

    A NamedTuple (immutable, and cheap to build by the hundred thousand), like `StreamRecord`.
    """

    shard_id: str | None
    sequence_number: str | None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class PutResult:
    """The outcome of `put_records`, one entry per input record in input order."""

    records: list[PutRecordResult]
    failed_record_count: int


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """A shard and its inclusive hash-key range."""

    shard_id: str
    starting_hash_key: int
    ending_hash_key: int


class StreamRecord(NamedTuple):
    """A record read back from a shard."""

    sequence_number: str
    approximate_arrival_timestamp: datetime
    partition_key: str
    data: bytes


@dataclass(frozen=True, slots=True)
class GetRecordsResult:
    """One `get_records` page: the records, where to read next, and how far behind the tip it is."""

    records: list[StreamRecord]
    next_iterator: str | None
    millis_behind_latest: int


class StreamError(Exception):
    """Base class of the stream port's errors."""


class InvalidRecordError(StreamError, ValueError):
    """A record or batch breaks the Kinesis limits (message names the record index, never its data)."""


class ShardNotFoundError(StreamError, KeyError):
    """The shard id does not exist in this stream."""


class InvalidIteratorError(StreamError, ValueError):
    """The iterator string was not issued by this stream."""


class ExpiredIteratorError(StreamError):
    """The iterator expired (Kinesis: after 5 minutes); get a new one from the last checkpoint."""


@runtime_checkable
class EventStream(Protocol):
    """A sharded, ordered, replayable log of records, plus per-consumer checkpoints."""

    stream_name: str

    def put_records(self, records: list[Record]) -> PutResult:
        """Append up to 500 records; each record's outcome is reported, in input order."""
        ...

    def list_shards(self) -> list[ShardInfo]:
        """Every shard of the stream, ordered by shard id."""
        ...

    def get_shard_iterator(
        self,
        shard_id: str,
        iterator_type: IteratorType | str,
        sequence_number: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        """An opaque iterator positioned per `iterator_type` (sequence number or timestamp when needed)."""
        ...

    def get_records(self, iterator: str, limit: int = MAX_RECORDS_PER_GET) -> GetRecordsResult:
        """Up to `limit` records from the iterator's position, in sequence order."""
        ...

    def checkpoint(self, consumer: str, shard_id: str, sequence_number: str) -> None:
        """Record that `consumer` has processed `shard_id` up to and including `sequence_number`."""
        ...

    def get_checkpoint(self, consumer: str, shard_id: str) -> str | None:
        """The last checkpointed sequence number of `consumer` on `shard_id`, or None."""
        ...


def hash_key(partition_key: str) -> int:
    """The 128-bit hash key Kinesis derives from a partition key (MD5 of its UTF-8 bytes)."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def even_hash_ranges(shard_count: int) -> list[tuple[int, int]]:
    """Inclusive hash-key ranges splitting the key space evenly, as Kinesis does on stream creation."""
    if shard_count < 1:
        raise ValueError("shard_count must be at least 1")
    step = HASH_KEY_SPACE // shard_count
    ranges = [(i * step, (i + 1) * step - 1) for i in range(shard_count - 1)]
    ranges.append(((shard_count - 1) * step, HASH_KEY_SPACE - 1))
    return ranges


def shard_id_for_index(index: int) -> str:
    """The Kinesis-style id of the index-th shard (`shardId-000000000000`)."""
    return f"shardId-{index:012d}"


def validate_batch(records: list[Record]) -> None:
    """Raise `InvalidRecordError` when a `put_records` batch breaks the Kinesis limits."""
    if not records:
        raise InvalidRecordError("put_records needs at least one record")
    if len(records) > MAX_RECORDS_PER_PUT:
        raise InvalidRecordError(
            f"put_records takes at most {MAX_RECORDS_PER_PUT} records, got {len(records)}"
        )
    binary = (bytes, bytearray, memoryview)
    for index, record in enumerate(records):
        key, data = record.partition_key, record.data
        if key.__class__ is not str or not 0 < len(key) <= MAX_PARTITION_KEY_CHARS:
            if not isinstance(key, str) or not 0 < len(key) <= MAX_PARTITION_KEY_CHARS:
                raise InvalidRecordError(
                    f"record {index}: partition_key must be a string of"
                    f" 1..{MAX_PARTITION_KEY_CHARS} characters"
                )
        if data.__class__ is not bytes and not isinstance(data, binary):
            raise InvalidRecordError(f"record {index}: data must be bytes")
        if len(data) > MAX_RECORD_BYTES:
            raise InvalidRecordError(f"record {index}: data is {len(data)} bytes, limit {MAX_RECORD_BYTES}")


def validate_sequence_number(sequence_number: str | None, what: str) -> int:
    """Parse a sequence number (a string of digits) or raise `ValueError` naming `what` needs it."""
    if sequence_number is None or not str(sequence_number).isdigit():
        raise ValueError(f"{what} needs a sequence number made of digits")
    return int(sequence_number)
