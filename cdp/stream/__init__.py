"""The event-stream port (Kinesis semantics) with a local SQLite log and a Kinesis adapter."""

from cdp.stream.consumer import Batch, StreamConsumer
from cdp.stream.port import (
    EventStream,
    GetRecordsResult,
    IteratorType,
    PutRecordResult,
    PutResult,
    Record,
    ShardInfo,
    StreamRecord,
)
from cdp.stream.producer import put_all

__all__ = [
    "Batch",
    "EventStream",
    "GetRecordsResult",
    "IteratorType",
    "PutRecordResult",
    "PutResult",
    "Record",
    "ShardInfo",
    "StreamConsumer",
    "StreamRecord",
    "put_all",
]
