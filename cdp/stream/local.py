"""Local adapter of the stream port: a durable, append-only, sharded log in one SQLite file (WAL).

Layout (one file may hold several streams and their consumers' checkpoints):
- `stream_shards`: one row per shard with its inclusive hash-key range (decimal strings, 128-bit);
- `stream_tip`: the last sequence number handed out in the file and the newest arrival time; sequence
  numbers come from it, so they only grow (in every shard) and are never reused after a trim;
- `stream_records`: clustered by (shard, sequence), so reading a shard is one range scan;
- `stream_checkpoints`: (stream, consumer, shard) -> last processed sequence number.

Arrival times never go backwards (a clock step back reuses the last arrival time), so a record's arrival
time grows with its sequence number; retention trims and AT_TIMESTAMP iterators rely on that.
A batch of `put_records` is one transaction: all records land, or none. A producer process and consumer
processes may use the same file at once: readers never block in WAL mode, writers wait on `busy_timeout`.
Durability: `synchronous=NORMAL` survives a crash of any process; pass `synchronous="FULL"` to survive
power loss too (each commit then waits for the disk).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cdp.stream.port import (
    MAX_RECORDS_PER_GET,
    GetRecordsResult,
    InvalidIteratorError,
    IteratorType,
    PutRecordResult,
    PutResult,
    Record,
    ShardInfo,
    ShardNotFoundError,
    StreamRecord,
    even_hash_ranges,
    hash_key,
    shard_id_for_index,
    validate_batch,
    validate_sequence_number,
)

if TYPE_CHECKING:
    from cdp.settings import Settings

DEFAULT_SHARDS = 4
SEQUENCE_DIGITS = 20
_ITERATOR_PREFIX = "v1"
_SEPARATOR = "\x1f"
_SHARD_CACHE_SIZE = 200_000  # partition keys (cards, customers) repeat: skip re-hashing them

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_shards (
    shard_key INTEGER PRIMARY KEY,
    stream_name TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    starting_hash_key TEXT NOT NULL,
    ending_hash_key TEXT NOT NULL,
    UNIQUE (stream_name, shard_id)
);
CREATE TABLE IF NOT EXISTS stream_tip (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_sequence INTEGER NOT NULL,
    last_arrival_ms INTEGER NOT NULL
);
INSERT OR IGNORE INTO stream_tip (id, last_sequence, last_arrival_ms) VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS stream_records (
    shard_key INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    arrival_ms INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (shard_key, sequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stream_checkpoints (
    stream_name TEXT NOT NULL,
    consumer TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (stream_name, consumer, shard_id)
) WITHOUT ROWID;
"""


_SEQUENCE_FORMAT = f"%0{SEQUENCE_DIGITS}d"


def format_sequence(sequence: int) -> str:
    """Fixed-width digits, so local sequence numbers also sort correctly as strings."""
    return _SEQUENCE_FORMAT % sequence


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class SqliteStreamLog:
    """A Kinesis-like stream stored in a SQLite file (see the module docstring for the guarantees)."""

    def __init__(
        self,
        path: Path | str,
        stream_name: str,
        shards: int | None = None,
        *,
        busy_timeout_ms: int = 30_000,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (creating if needed) `stream_name` in the file at `path`.

        `shards` is the shard count when the stream is created (default 4); for an existing stream it
        may be omitted, and must match if given (resharding is not supported locally).
        """
        if not stream_name:
            raise ValueError("stream_name must not be empty")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        self.stream_name = stream_name
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(f"PRAGMA synchronous = {synchronous}")
        self._shards = self._open_stream(shards)
        self._shard_by_id = {shard.shard_id: key for key, shard in self._shards}
        self._starts = [shard.starting_hash_key for _, shard in self._shards]
        self._shard_cache: dict[str, tuple[int, str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteStreamLog:
        """The platform's stream log: `<state_dir>/stream.sqlite`, stream `settings.stream_name`."""
        return cls(settings.state_dir / "stream.sqlite", settings.stream_name)

    # -- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteStreamLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_stream(self, shards: int | None) -> list[tuple[int, ShardInfo]]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            rows = conn.execute(
                "SELECT shard_key, shard_id, starting_hash_key, ending_hash_key FROM stream_shards"
                " WHERE stream_name = ? ORDER BY shard_id",
                (self.stream_name,),
            ).fetchall()
            if rows and shards is not None and shards != len(rows):
                raise ValueError(
                    f"stream {self.stream_name!r} exists with {len(rows)} shards, not {shards}"
                    " (resharding is not supported by the local log)"
                )
            if not rows:
                count = DEFAULT_SHARDS if shards is None else shards
                for index, (start, end) in enumerate(even_hash_ranges(count)):
                    conn.execute(
                        "INSERT INTO stream_shards"
                        " (stream_name, shard_id, starting_hash_key, ending_hash_key) VALUES (?, ?, ?, ?)",
                        (self.stream_name, shard_id_for_index(index), str(start), str(end)),
                    )
                rows = conn.execute(
                    "SELECT shard_key, shard_id, starting_hash_key, ending_hash_key FROM stream_shards"
                    " WHERE stream_name = ? ORDER BY shard_id",
                    (self.stream_name,),
                ).fetchall()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return [(key, ShardInfo(shard_id, int(start), int(end))) for key, shard_id, start, end in rows]

    # -- producer ----------------------------------------------------------------------------------
    def _shard_for(self, partition_key: str) -> tuple[int, str]:
        target = self._shard_cache.get(partition_key)
        if target is None:
            key, shard = self._shards[bisect.bisect_right(self._starts, hash_key(partition_key)) - 1]
            if len(self._shard_cache) >= _SHARD_CACHE_SIZE:
                self._shard_cache.clear()
            target = self._shard_cache[partition_key] = (key, shard.shard_id)
        return target

    def put_records(self, records: list[Record]) -> PutResult:
        """Append the batch in one transaction; every record gets its shard id and sequence number."""
        validate_batch(records)
        targets = [self._shard_for(record.partition_key) for record in records]
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                last_sequence, last_arrival = self._tip()
                arrival = max(int(self._clock() * 1000), last_arrival)
                first = last_sequence + 1
                conn.executemany(
                    "INSERT INTO stream_records (sequence, shard_key, arrival_ms, partition_key, data)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (first + i, target[0], arrival, record.partition_key, bytes(record.data))
                        for i, (record, target) in enumerate(zip(records, targets, strict=True))
                    ],
                )
                conn.execute(
                    "UPDATE stream_tip SET last_sequence = ?, last_arrival_ms = ? WHERE id = 1",
                    (first + len(records) - 1, arrival),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        results = [
            PutRecordResult(target[1], _SEQUENCE_FORMAT % (first + i)) for i, target in enumerate(targets)
        ]
        return PutResult(records=results, failed_record_count=0)

    def _tip(self) -> tuple[int, int]:
        """(highest sequence ever handed out in the file, arrival ms of the newest record or 0)."""
        last_sequence, last_arrival_ms = self._conn.execute(
            "SELECT last_sequence, last_arrival_ms FROM stream_tip WHERE id = 1"
        ).fetchone()
        return int(last_sequence), int(last_arrival_ms)

    # -- reader ------------------------------------------------------------------------------------
    def list_shards(self) -> list[ShardInfo]:
        return [shard for _, shard in self._shards]

    def _shard_key(self, shard_id: str) -> int:
        try:
            return self._shard_by_id[shard_id]
        except KeyError:
            raise ShardNotFoundError(f"stream {self.stream_name!r} has no shard {shard_id!r}") from None

    def get_shard_iterator(
        self,
        shard_id: str,
        iterator_type: IteratorType | str,
        sequence_number: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        shard_key = self._shard_key(shard_id)
        kind = IteratorType(iterator_type)
        with self._lock:
            if kind is IteratorType.TRIM_HORIZON:
                after = 0
            elif kind is IteratorType.LATEST:
                after = self._tip()[0]
            elif kind is IteratorType.AT_SEQUENCE_NUMBER:
                after = validate_sequence_number(sequence_number, kind.value) - 1
            elif kind is IteratorType.AFTER_SEQUENCE_NUMBER:
                after = validate_sequence_number(sequence_number, kind.value)
            else:
                if timestamp is None:
                    raise ValueError("AT_TIMESTAMP needs a timestamp")
                after = self._before_timestamp(shard_key, timestamp)
        return self._encode_iterator(shard_id, after)

    def _before_timestamp(self, shard_key: int, timestamp: datetime) -> int:
        """The position just before the shard's first record that arrived at or after `timestamp`."""
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=UTC)
        cutoff_ms = int(timestamp.timestamp() * 1000)
        row = self._conn.execute(
            "SELECT sequence FROM stream_records WHERE shard_key = ? AND arrival_ms >= ?"
            " ORDER BY sequence LIMIT 1",
            (shard_key, cutoff_ms),
        ).fetchone()
        return row[0] - 1 if row else self._tip()[0]

    def _encode_iterator(self, shard_id: str, after: int) -> str:
        raw = _SEPARATOR.join((_ITERATOR_PREFIX, self.stream_name, shard_id, str(after)))
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii")

    def _decode_iterator(self, iterator: str) -> tuple[str, int]:
        try:
            raw = base64.urlsafe_b64decode(iterator.encode("ascii")).decode("utf-8")
            prefix, stream_name, shard_id, after = raw.split(_SEPARATOR)
        except (ValueError, UnicodeError, binascii.Error, AttributeError):
            raise InvalidIteratorError("not a shard iterator of this stream") from None
        if prefix != _ITERATOR_PREFIX or stream_name != self.stream_name or not after.isdigit():
            raise InvalidIteratorError("not a shard iterator of this stream")
        return shard_id, int(after)

    def get_records(self, iterator: str, limit: int = MAX_RECORDS_PER_GET) -> GetRecordsResult:
        if not 1 <= limit <= MAX_RECORDS_PER_GET:
            raise ValueError(f"limit must be within 1..{MAX_RECORDS_PER_GET}")
        shard_id, after = self._decode_iterator(iterator)
        shard_key = self._shard_key(shard_id)
        with self._lock:
            rows = self._conn.execute(
                "SELECT sequence, printf(?, sequence), arrival_ms, partition_key, data FROM stream_records"
                " WHERE shard_key = ? AND sequence > ? ORDER BY sequence LIMIT ?",
                (_SEQUENCE_FORMAT, shard_key, after, limit),
            ).fetchall()
            newest = self._conn.execute(
                "SELECT sequence, arrival_ms FROM stream_records WHERE shard_key = ?"
                " ORDER BY sequence DESC LIMIT 1",
                (shard_key,),
            ).fetchone()
        arrivals: dict[int, datetime] = {}  # records of one put share an arrival time
        records = [
            StreamRecord(
                sequence_number,
                arrivals.get(arrival_ms) or arrivals.setdefault(arrival_ms, _utc(arrival_ms)),
                partition_key,
                data,
            )
            for _, sequence_number, arrival_ms, partition_key, data in rows
        ]
        behind = 0
        if rows and newest and newest[0] > rows[-1][0]:
            behind = max(0, newest[1] - rows[-1][2])
        next_after = rows[-1][0] if rows else after
        return GetRecordsResult(records, self._encode_iterator(shard_id, next_after), behind)

    # -- retention ---------------------------------------------------------------------------------
    def trim(self, retention_hours: float) -> int:
        """Delete this stream's records that arrived more than `retention_hours` ago; returns the count."""
        if retention_hours < 0:
            raise ValueError("retention_hours must not be negative")
        cutoff_ms = int((self._clock() - retention_hours * 3600) * 1000)
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                deleted = 0
                for shard_key, _ in self._shards:
                    row = conn.execute(
                        "SELECT sequence FROM stream_records WHERE shard_key = ? AND arrival_ms >= ?"
                        " ORDER BY sequence LIMIT 1",
                        (shard_key, cutoff_ms),
                    ).fetchone()
                    keep_from = row[0] if row else self._tip()[0] + 1
                    deleted += conn.execute(
                        "DELETE FROM stream_records WHERE shard_key = ? AND sequence < ?",
                        (shard_key, keep_from),
                    ).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return deleted

    # -- checkpoints -------------------------------------------------------------------------------
    def checkpoint(self, consumer: str, shard_id: str, sequence_number: str) -> None:
        self._shard_key(shard_id)
        validate_sequence_number(sequence_number, "checkpoint")
        with self._lock:
            self._conn.execute(
                "INSERT INTO stream_checkpoints"
                " (stream_name, consumer, shard_id, sequence_number, updated_ms)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream_name, consumer, shard_id) DO UPDATE"
                " SET sequence_number = excluded.sequence_number, updated_ms = excluded.updated_ms",
                (self.stream_name, consumer, shard_id, str(sequence_number), int(self._clock() * 1000)),
            )

    def get_checkpoint(self, consumer: str, shard_id: str) -> str | None:
        self._shard_key(shard_id)
        with self._lock:
            row = self._conn.execute(
                "SELECT sequence_number FROM stream_checkpoints"
                " WHERE stream_name = ? AND consumer = ? AND shard_id = ?",
                (self.stream_name, consumer, shard_id),
            ).fetchone()
        return row[0] if row else None
