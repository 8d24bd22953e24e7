"""A port-agnostic consumer: reads every shard from the consumer's checkpoint, hands batches to a callback,
and checkpoints each batch after the callback returns.

`handle` returns None when the whole batch is done: the shard is checkpointed at the batch's last record.
It may instead return the sequence number of one record of the batch to read again from ("done up to
before this one"): the shard is checkpointed at the record just before it (nothing is written when it is
the batch's first record) and re-read from it on the next poll, so that record and every one after it
are delivered again. A sequence number that is not in the batch raises `ValueError` and checkpoints
nothing.

Delivery guarantee (at-least-once, bounded): a batch is checkpointed only after `handle` returned. If the
process dies after `handle` finished but before the checkpoint was written, that one batch per shard is
delivered again on restart; nothing is ever skipped. A sink that writes idempotently by a record key
(e.g. an upsert keyed by transaction id) therefore ends with every record exactly once.
If `handle` raises, nothing of that batch is checkpointed, the shard is re-read from its checkpoint on the
next poll, and the exception propagates to the caller. A partial checkpoint (a returned sequence number)
only covers records before the one returned, so it never skips a record either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from cdp.stream.port import (
    MAX_RECORDS_PER_GET,
    EventStream,
    ExpiredIteratorError,
    GetRecordsResult,
    IteratorType,
    StreamRecord,
)


@dataclass(frozen=True, slots=True)
class Batch:
    """Records read from one shard in one call, in sequence order."""

    shard_id: str
    records: list[StreamRecord]
    millis_behind_latest: int


# `handle` returns None (the batch is done) or the sequence number of the batch's record to re-read from.
Handle = Callable[[Batch], str | None]


class StreamConsumer:
    """Reads all shards of `stream` as `consumer`, calling `handle(batch)` then checkpointing."""

    def __init__(
        self,
        stream: EventStream,
        consumer: str,
        handle: Handle,
        *,
        batch_size: int = 1000,
    ) -> None:
        if not 1 <= batch_size <= MAX_RECORDS_PER_GET:
            raise ValueError(f"batch_size must be within 1..{MAX_RECORDS_PER_GET}")
        self.stream = stream
        self.consumer = consumer
        self.handle = handle
        self.batch_size = batch_size
        self._shard_ids = [shard.shard_id for shard in stream.list_shards()]
        self._positions = {s: stream.get_checkpoint(consumer, s) for s in self._shard_ids}
        self._iterators: dict[str, str | None] = {}
        self.millis_behind_latest: dict[str, int] = dict.fromkeys(self._shard_ids, 0)

    def _iterator(self, shard_id: str) -> str | None:
        if shard_id not in self._iterators:
            position = self._positions[shard_id]
            if position is None:
                iterator = self.stream.get_shard_iterator(shard_id, IteratorType.TRIM_HORIZON)
            else:
                iterator = self.stream.get_shard_iterator(
                    shard_id, IteratorType.AFTER_SEQUENCE_NUMBER, sequence_number=position
                )
            self._iterators[shard_id] = iterator
        return self._iterators[shard_id]

    def _read(self, shard_id: str, iterator: str) -> GetRecordsResult:
        try:
            return self.stream.get_records(iterator, self.batch_size)
        except ExpiredIteratorError:
            self._iterators.pop(shard_id, None)
            return self.stream.get_records(str(self._iterator(shard_id)), self.batch_size)

    def poll(self) -> int:
        """Read at most one batch from each shard, handle and checkpoint it; returns records handed to
        `handle` (those it asked to re-read included, so a loop never takes a re-read for idle)."""
        handled = 0
        for shard_id in self._shard_ids:
            iterator = self._iterator(shard_id)
            if iterator is None:
                continue  # the shard was closed and fully read
            result = self._read(shard_id, iterator)
            self.millis_behind_latest[shard_id] = result.millis_behind_latest
            if not result.records:
                self._iterators[shard_id] = result.next_iterator
                continue
            try:
                resume_at = self.handle(Batch(shard_id, result.records, result.millis_behind_latest))
                done = self._done_before(shard_id, result.records, resume_at)
            except BaseException:
                self._iterators.pop(shard_id, None)  # re-read from the checkpoint next time
                raise
            if done:
                last = result.records[done - 1].sequence_number
                self.stream.checkpoint(self.consumer, shard_id, last)
                self._positions[shard_id] = last
            if resume_at is None:
                self._iterators[shard_id] = result.next_iterator
            else:
                self._iterators.pop(shard_id, None)  # re-read after the new checkpoint
            handled += len(result.records)
        return handled

    @staticmethod
    def _done_before(shard_id: str, records: list[StreamRecord], resume_at: str | None) -> int:
        """How many leading records of the batch are done when `handle` returned `resume_at`."""
        if resume_at is None:
            return len(records)
        for index, record in enumerate(records):
            if record.sequence_number == resume_at:
                return index
        raise ValueError(f"handle asked to re-read from record {resume_at}, not in the batch of {shard_id}")

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        idle_sleep: float = 0.2,
        stop_when_idle: bool = False,
    ) -> int:
        """Poll until `stop` is set, or with `stop_when_idle` until a poll finds nothing; returns a count."""
        stop = stop or threading.Event()
        total = 0
        while not stop.is_set():
            handled = self.poll()
            total += handled
            if handled == 0:
                if stop_when_idle:
                    break
                stop.wait(idle_sleep)
        return total
