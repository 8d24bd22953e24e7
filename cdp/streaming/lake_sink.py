"""A stream consumer that lands protected transactions in the lake, exactly once by `txn_id`.

Each batch from a shard is written as `part-stream-<shard>-<first sequence number>.parquet` in the
partitions it touches, its ids are claimed in the consumer's idempotency index, then the shard is
checkpointed. After a crash the consumer re-reads from its checkpoint: the re-read batch starts at the same
sequence number, so it replaces the same files instead of adding rows. Records the producer sent twice (a
put retried after a crash) arrive in a later batch; the idempotency index knows they are already in
another file and drops them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from cdp.aggregates.refresh import refresh_quietly
from cdp.backends import Backends
from cdp.lake import tables
from cdp.lake.writer import LakeWriter
from cdp.stream.consumer import Batch, StreamConsumer
from cdp.streaming import records

CONSUMER = "lake-sink"


@dataclass
class SinkReport:
    records: int = 0  # records read from the stream by this run
    written: int = 0  # rows landed (after dropping duplicates)
    duplicates: int = 0
    batches: int = 0


class LakeSink:
    """Handles stream batches by writing them into the lake's transactions table."""

    def __init__(self, backends: Backends) -> None:
        self.b = backends
        self.writer = LakeWriter(backends.object_store, backends.settings.lake_bucket)
        self.report = SinkReport()
        self.index = backends.idempotency_index(CONSUMER)
        backends.catalog.register_table(tables.TRANSACTIONS.info(backends.settings.lake_bucket))

    def __call__(self, batch: Batch) -> None:
        if not batch.records:
            return
        rows = [records.decode(r.data) for r in batch.records]
        self.report.records += len(rows)
        self.report.batches += 1
        unique: dict[str, dict] = {}
        for r in rows:
            unique.setdefault(r["txn_id"], r)
        table = records.to_table(list(unique.values()))
        name = f"stream-{batch.shard_id}-{batch.records[0].sequence_number}"
        # Rows already landed under another file (a producer resend seen in an earlier batch) are dropped;
        # rows landed under this batch's own name are being rewritten with it, so they are kept.
        elsewhere = self.index.claimed_elsewhere(table["txn_id"].to_pylist(), name)
        if elsewhere:
            table = table.filter(pc.invert(pc.is_in(table["txn_id"], pa.array(sorted(elsewhere)))))
        self.report.duplicates += len(rows) - table.num_rows
        if table.num_rows:
            self.writer.write_chunk(tables.TRANSACTIONS, table, name)
            self.index.record(table["txn_id"].to_pylist(), name)
        self.report.written += table.num_rows


def consume(
    backends: Backends | None = None,
    follow: bool = False,
    idle_seconds: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> SinkReport:
    """Consume the stream into the lake until caught up (or forever with `follow`)."""
    b = backends or Backends()
    sink = LakeSink(b)
    consumer = StreamConsumer(b.stream, CONSUMER, sink, batch_size=b.settings.stream_batch_size)

    while True:
        handled = consumer.poll()
        if progress is not None and handled:
            progress(sink.report.records)
        if handled == 0:
            if not follow:
                break
            time.sleep(idle_seconds)
    if sink.report.written:
        refresh_quietly(b, ("fraud",), after="the stream landing")  # the dashboards' aggregates
    return sink.report
