"""Put any number of records through the stream port: chunks of 500, failed records retried."""

from __future__ import annotations

import time
from collections.abc import Iterable

from cdp.stream.port import MAX_RECORDS_PER_PUT, EventStream, PutRecordResult, Record, StreamError


class PutFailedError(StreamError):
    """Some records were still rejected after every retry (message gives counts and error codes only)."""


def put_all(
    stream: EventStream,
    records: Iterable[Record],
    *,
    max_attempts: int = 5,
    backoff_seconds: float = 0.1,
) -> list[PutRecordResult]:
    """Put `records` in batches of up to 500, retrying the failed ones with exponential backoff.

    Returns one successful result per input record, in input order. Order within a shard is kept
    for records of one batch; a retried record may land after later records of its partition key.
    """
    pending = list(records)
    results: list[PutRecordResult | None] = [None] * len(pending)
    for start in range(0, len(pending), MAX_RECORDS_PER_PUT):
        indexes = list(range(start, min(start + MAX_RECORDS_PER_PUT, len(pending))))
        for attempt in range(max_attempts):
            outcome = stream.put_records([pending[i] for i in indexes])
            failed = []
            for index, result in zip(indexes, outcome.records, strict=True):
                if result.error_code is None:
                    results[index] = result
                else:
                    failed.append((index, result.error_code))
            if not failed:
                break
            indexes = [index for index, _ in failed]
            if attempt + 1 == max_attempts:
                codes = sorted({code for _, code in failed})
                raise PutFailedError(f"{len(failed)} records failed after {max_attempts} attempts: {codes}")
            time.sleep(backoff_seconds * 2**attempt)
    return [r for r in results if r is not None]
