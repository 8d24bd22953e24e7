"""The DynamoDB tables the AWS adapters use: name suffix and key attributes (all strings).

Keys are taken from the adapters where they publish them (`cdp.oltp.dynamodb.TABLE_KEYS`,
`cdp.apikeys.dynamodb.TABLE_SUFFIX`, `cdp.idempotency.dynamodb`); the tests create each adapter's own
table in moto and compare.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.apikeys.dynamodb import TABLE_SUFFIX as API_KEYS_SUFFIX
from cdp.corebanking.erasure_requests.dynamodb import TABLE_SUFFIX as ERASURE_REQUESTS_SUFFIX
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
        TableSpec("stream-checkpoints", "lease_key", "shard_id", "stream consumer checkpoints per shard"),
        TableSpec("online-features", "key", None, "online feature state per card"),
        TableSpec("data-keys", "pk", None, "wrapped per-customer data keys (crypto-shredding)"),
        TableSpec(ERASURE_REQUESTS_SUFFIX, "id", None, "two-person erasure requests (user id, token, who)"),
        TableSpec(API_KEYS_SUFFIX, "key_id", None, "hashed API keys of the public API"),
        TableSpec(
            idempotency.TABLE_SUFFIX,
            idempotency.KEY,
            None,
            "stream consumers' idempotency index: consumer#transaction id -> batch",
            idempotency.TTL_ATTRIBUTE,
        ),
    ]
