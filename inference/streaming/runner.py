"""The local stream runner: what the Kinesis event-source mapping does for the transform Lambda.

It is a `StreamConsumer` (which reads each shard from the runner's checkpoint, renews expired iterators
and checkpoints) whose batch callback wraps the records of one shard in a Kinesis-shaped event
(`aws:kinesis`, base64 data), calls the handler and honours its partial-batch response like Lambda does:
- no `batchItemFailures`: the batch is checkpointed at its last record;
- failures: the shard is checkpointed just before the lowest failed sequence number and re-read from
  there on the next poll (the records after it are delivered again; the handler is idempotent);
- a record that fails `max_attempts` deliveries in a row is written to the dead-letter file (shard and
  sequence number only, never data) and passed over, like Lambda's maximum retry attempts with an
  on-failure destination;
- the handler raising: nothing is checkpointed and the exception propagates.
Nothing is checkpointed before the handler has returned for that batch.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp.stream.consumer import Batch, StreamConsumer
from cdp.stream.port import EventStream, StreamRecord

if TYPE_CHECKING:
    from cdp.backends import Backends

CONSUMER = "stream-handler"
DEAD_LETTER_FILE = "stream-handler-dead-letters.jsonl"
DEFAULT_MAX_ATTEMPTS = 3
LOCAL_REGION = "local"

Handler = Callable[[Mapping[str, Any], Any], Mapping[str, Any]]


def kinesis_event(
    stream_name: str, shard_id: str, batch: list[StreamRecord], region: str = LOCAL_REGION
) -> dict[str, Any]:
    """The event Lambda receives from a Kinesis event-source mapping for these records of one shard."""
    arn = f"arn:aws:kinesis:{region}:000000000000:stream/{stream_name}"
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64.b64encode(r.data).decode("ascii"),
                    "approximateArrivalTimestamp": r.approximate_arrival_timestamp.timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r.sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::000000000000:role/{CONSUMER}",
                "awsRegion": region,
                "eventSourceARN": arn,
            }
            for r in batch
        ]
    }


@dataclass
class RunReport:
    records: int = 0  # records checkpointed past (handled, or dead-lettered)
    deliveries: int = 0  # handler invocations
    partial_failures: int = 0  # invocations that reported failed records
    dead_lettered: int = 0


class StreamRunner:
    """Feeds `handler` Kinesis-shaped batches from every shard of `stream`, checkpointing as `consumer`."""

    def __init__(
        self,
        stream: EventStream,
        handler: Handler,
        *,
        consumer: str = CONSUMER,
        batch_size: int = 1000,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        dead_letters: Path | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.stream = stream
        self.handler = handler
        self.consumer = consumer
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.dead_letters = dead_letters
        self.report = RunReport()
        self._failing: dict[str, tuple[str, int]] = {}  # shard -> (failing sequence number, attempts)
        self._reader = StreamConsumer(stream, consumer, self._deliver, batch_size=batch_size)

    def poll(self) -> int:
        """Deliver at most one batch per shard; returns how many records were read (0: caught up)."""
        return self._reader.poll()

    def _deliver(self, batch: Batch) -> str | None:
        """One invocation: None when the batch is done, else the sequence number to re-read from."""
        self.report.deliveries += 1
        response = self.handler(kinesis_event(self.stream.stream_name, batch.shard_id, batch.records), None)
        failed = [str(f["itemIdentifier"]) for f in (response or {}).get("batchItemFailures") or []]
        if not failed:
            self._failing.pop(batch.shard_id, None)
            self.report.records += len(batch.records)
            return None
        self.report.partial_failures += 1
        return self._honour_failures(batch.shard_id, batch.records, failed)

    def _honour_failures(self, shard_id: str, batch: list[StreamRecord], failed: list[str]) -> str | None:
        """Re-read from the lowest failed record, or pass over it (dead-lettered) after `max_attempts`."""
        lowest = min(failed, key=int)
        position = next((i for i, r in enumerate(batch) if r.sequence_number == lowest), None)
        if position is None:
            raise ValueError(f"the handler reported record {lowest}, which is not in the batch of {shard_id}")
        previous, attempts = self._failing.get(shard_id, (None, 0))
        attempts = attempts + 1 if previous == lowest else 1
        if attempts < self.max_attempts:
            self._failing[shard_id] = (lowest, attempts)
            self.report.records += position
            return lowest
        self._dead_letter(shard_id, lowest, attempts)
        self._failing.pop(shard_id, None)
        self.report.records += position + 1
        after = position + 1
        return batch[after].sequence_number if after < len(batch) else None

    def _dead_letter(self, shard_id: str, sequence_number: str, attempts: int) -> None:
        self.report.dead_lettered += 1
        if self.dead_letters is None:
            return
        self.dead_letters.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "stream": self.stream.stream_name,
            "shard_id": shard_id,
            "sequence_number": sequence_number,
            "attempts": attempts,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        with self.dead_letters.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")

    def run(
        self, *, follow: bool = False, idle_seconds: float = 1.0, stop: threading.Event | None = None
    ) -> RunReport:
        """Poll until caught up (a poll reads nothing), or with `follow` until `stop` is set."""
        self._reader.run(stop=stop, idle_sleep=idle_seconds, stop_when_idle=not follow)
        return self.report


def run_stream(
    backends: Backends | None = None,
    follow: bool = False,
    idle_seconds: float = 1.0,
    stop: threading.Event | None = None,
) -> RunReport:
    """`cdp stream run [--follow]`: score the stream into `transactions_scored` / `fraud_alerts`."""
    from cdp.aggregates.refresh import refresh_quietly
    from cdp.backends import Backends
    from inference.streaming.handler import build_handler

    b = backends or Backends()
    handler = build_handler(b)
    runner = StreamRunner(
        b.stream,
        handler,
        batch_size=b.settings.stream_batch_size,
        dead_letters=b.settings.state_dir / DEAD_LETTER_FILE,
    )
    try:
        report = runner.run(follow=follow, idle_seconds=idle_seconds, stop=stop)
    finally:
        handler.close()
    if report.records:
        refresh_quietly(b, ("stream",), after="the stream scoring")  # the dashboards' aggregates
    return report
