"""The lake's tables: names, schemas, partitioning and locations (one place decides the layout)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from cdp.catalog.port import TableInfo
from cdp.security.protector import PROTECTED_CARDS_SCHEMA, PROTECTED_USERS_SCHEMA

PARTITION_KEYS = ("year", "month")

# Protected transactions: tokens instead of ids, no direct identifiers (the IBM transaction rows carry none
# beyond the ids) and nothing that gives the source order away (the IBM file is ordered by user). `event_seq`
# orders a card's rows (its source line + a keyed per-card offset, 0 <= event_seq < 2^31) and `txn_id` is
# the card token's keyed part + "-" + event_seq (see `cdp.lake.transactions`).
TRANSACTIONS_LAKE_SCHEMA = pa.schema(
    [
        ("txn_id", pa.string()),
        ("user_token", pa.string()),
        ("card_token", pa.string()),
        ("ts", pa.timestamp("s")),
        ("amount_cents", pa.int64()),
        ("channel", pa.string()),
        ("merchant_id", pa.int64()),
        ("merchant_city", pa.string()),
        ("merchant_state", pa.string()),
        ("zip", pa.string()),
        ("mcc", pa.int16()),
        ("errors", pa.list_(pa.string())),
        ("is_fraud", pa.bool_()),
        ("event_seq", pa.int64()),
        ("year", pa.int32()),
        ("month", pa.int32()),
    ]
)


@dataclass(frozen=True)
class LakeTable:
    name: str
    schema: pa.Schema
    partition_keys: tuple[str, ...] = ()

    def location(self, bucket: str) -> str:
        return f"s3://{bucket}/{self.name}/"

    def info(self, bucket: str) -> TableInfo:
        return TableInfo(self.name, self.location(bucket), self.schema, self.partition_keys)


TRANSACTIONS = LakeTable("transactions", TRANSACTIONS_LAKE_SCHEMA, PARTITION_KEYS)
CUSTOMERS = LakeTable("customers", PROTECTED_USERS_SCHEMA)
CARDS = LakeTable("cards", PROTECTED_CARDS_SCHEMA)

ALL_TABLES = (TRANSACTIONS, CUSTOMERS, CARDS)
