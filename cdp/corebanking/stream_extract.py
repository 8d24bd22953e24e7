"""The extraction Lambda: core banking's transactions table stream -> protected records on the stream.

Each `INSERT` of the DynamoDB stream (view `NEW_IMAGE`) is a transaction core banking just stored. The
batch goes through the same protection as the producer and the batch path
(`protect_transactions_for_lake`: tokens instead of ids, per-customer data keys under KMS) and onto the
Kinesis stream partitioned by card token. Transactions of erased customers (a tombstone, or a shredded token
secret) are dropped and counted, never sent. Other events (updates, the purge's deletes) carry nothing new.

A failure raises: the Lambda event source retries the batch (bisecting it), and the consumers absorb a
record sent twice because they write idempotently by `txn_id`. Log lines and errors hold counts only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
from boto3.dynamodb.types import TypeDeserializer

from cdp.corebanking.tombstones import erased_mask, erased_users
from cdp.ibm.schema import TRANSACTIONS_SCHEMA
from cdp.lake.transactions import protect_transactions_for_lake
from cdp.oltp.dynamodb import transaction_row
from cdp.stream.port import Record
from cdp.stream.producer import put_all
from cdp.streaming import records

if TYPE_CHECKING:
    from cdp.backends import Backends

log = logging.getLogger("cdp.corebanking.stream_extract")
_deserialize = TypeDeserializer().deserialize


@dataclass
class ExtractReport:
    """What one invocation did (counts only)."""

    inserts: int = 0
    sent: int = 0
    erased: int = 0
    ignored: int = 0  # MODIFY / REMOVE events


def new_transactions(event: Mapping[str, Any]) -> tuple[pa.Table, int]:
    """The inserted transactions of a DynamoDB stream event, in stream order, and the count of others."""
    rows, ignored = [], 0
    for record in event.get("Records") or []:
        image = record.get("dynamodb", {}).get("NewImage")
        if record.get("eventName") != "INSERT" or not image:
            ignored += 1
            continue
        item = {name: _deserialize(value) for name, value in image.items()}
        row = transaction_row(item)
        rows.append({name: row.get(name) for name in TRANSACTIONS_SCHEMA.names})
    return pa.Table.from_pylist(rows, schema=TRANSACTIONS_SCHEMA), ignored


def extract(event: Mapping[str, Any], backends: Backends) -> ExtractReport:
    """Protect the event's new transactions and put them on the stream (erased customers' left out)."""
    table, ignored = new_transactions(event)
    report = ExtractReport(inserts=table.num_rows, ignored=ignored)
    if table.num_rows == 0:
        return report
    gone = erased_users(backends.oltp)
    shredded = backends.protector.tokens.erased_rows(table["user"])
    if shredded is not None:
        gone |= set(pc.filter(table["user"], pa.array(shredded)).to_pylist())
    keep = table.filter(pc.invert(erased_mask(table, gone)))
    report.erased = table.num_rows - keep.num_rows
    if keep.num_rows:
        lake_rows = protect_transactions_for_lake(backends.protector, keep).to_pylist()
        put_all(backends.stream, [Record(r["card_token"], records.encode(r)) for r in lake_rows])
    report.sent = keep.num_rows
    return report


_backends: Backends | None = None


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, int]:
    """The Lambda entry point (`cdp.corebanking.stream_extract.lambda_handler`)."""
    global _backends
    if _backends is None:
        from cdp.backends import Backends

        _backends = Backends()
    report = extract(event, _backends)
    log.info(
        "extracted %d inserts: %d sent, %d erased left out, %d other events",
        report.inserts,
        report.sent,
        report.erased,
        report.ignored,
    )
    return {"sent": report.sent, "erased": report.erased}
