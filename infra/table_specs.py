"""The DynamoDB tables the AWS adapters use: name suffix and key attributes (all strings).

Suffixes come from `cdp.aws_resources` (the OLTP store's from `cdp.oltp.dynamodb.TABLE_KEYS`), keys from the
adapters where they publish them (`cdp.oltp.dynamodb.TABLE_KEYS`, `cdp.idempotency.dynamodb`); the tests
create each adapter's own table in moto and compare (the reply store, which creates none, is run on its
table as synthesised).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.aws_resources import (
    API_KEYS_TABLE,
    DATA_KEYS_TABLE,
    ERASURE_REQUESTS_TABLE,
    IDEMPOTENCY_TABLE,
    NOTICE_REPLIES_TABLE,
    ONLINE_FEATURES_TABLE,
    STREAM_CHECKPOINTS_TABLE,
)
from cdp.idempotency import dynamodb as idempotency
from cdp.oltp.dynamodb import ERASURES
from cdp.oltp.dynamodb import TABLE_KEYS as OLTP_TABLE_KEYS


@dataclass(frozen=True)
class TableSpec:
    """One table: `<prefix><suffix>`, hash key and optional range key, what it holds, its TTL attribute."""

    suffix: str
    partition_key: str
    sort_key: str | None
    purpose: str
    ttl_attribute: str | None = None


def table_specs() -> list[TableSpec]:
    """Every table of the AWS backend."""
    oltp = [
        TableSpec(
            name,
            keys[0],
            keys[1] if len(keys) > 1 else None,
            "core banking: erasure tombstones (no PII)"
            if name == ERASURES
            else f"core banking: {name} (with PII)",
        )
        for name, keys in OLTP_TABLE_KEYS.items()
    ]
    return oltp + [
        TableSpec(STREAM_CHECKPOINTS_TABLE, "lease_key", "shard_id", "stream consumer checkpoints per shard"),
        TableSpec(ONLINE_FEATURES_TABLE, "key", None, "online feature state per card"),
        TableSpec(DATA_KEYS_TABLE, "pk", None, "wrapped per-customer data keys (crypto-shredding)"),
        TableSpec(ERASURE_REQUESTS_TABLE, "id", None, "two-person erasure requests (user id, token, who)"),
        TableSpec(API_KEYS_TABLE, "key_id", None, "hashed API keys of the public API"),
        TableSpec(
            IDEMPOTENCY_TABLE,
            idempotency.KEY,
            None,
            "stream consumers' idempotency index: consumer#transaction id -> batch",
            idempotency.TTL_ATTRIBUTE,
        ),
        TableSpec(
            NOTICE_REPLIES_TABLE,
            "pk",
            None,
            "fraud notices' reply codes -> transaction ids, and the customers' answers (no PII)",
        ),
    ]
