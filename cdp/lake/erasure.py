"""Remove one customer's rows from the lake's small tables (`customers`, `cards`) at erasure.

Each Parquet file of those tables that holds a row of the customer's token is rewritten without it and
put back at the same URI: the object store's put is atomic (a reader sees the old file or the new one),
and the catalog's table definition (its location) does not change, so no re-registration is needed.
Files without a row of the customer are left untouched. The big `transactions` table is kept: it is
pseudonymous (keyed tokens, no direct identifier) and, once the customer's data key and token secret are
gone, nothing links its rows back to the person.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cdp.lake import tables
from cdp.lake.tables import LakeTable
from cdp.lake.writer import parquet_bytes
from cdp.objectstore.port import ObjectStore
from cdp.security.anonymity import keep_k_anonymous


@dataclass
class LakeErasure:
    """What was removed from the lake's small tables."""

    customers: int = 0  # rows removed from `customers`
    cards: int = 0  # rows removed from `cards`
    card_tokens: set[str] = field(default_factory=set)  # the tokens of the removed cards


def _rewrite_without(
    store: ObjectStore, bucket: str, table: LakeTable, user_token: str, k_anonymity: int = 1
) -> pa.Table:
    """Rewrite every file of `table` without the rows of `user_token`; returns the removed rows. With
    `k_anonymity` > 1 (the customers table, one file), the rows left in a class smaller than k by the
    removal lose their quasi-identifiers, so the table stays k-anonymous."""
    removed = []
    for obj in list(store.list(table.location(bucket))):
        if not obj.uri.endswith(".parquet"):
            continue
        rows = pq.read_table(io.BytesIO(store.get_bytes(obj.uri)))
        mine = pc.equal(rows["user_token"], pa.scalar(user_token))
        hits = pc.sum(pc.cast(pc.fill_null(mine, False), pa.int64())).as_py() or 0
        if not hits:
            continue
        removed.append(rows.filter(mine))
        kept = rows.filter(pc.invert(pc.fill_null(mine, False)))
        if k_anonymity > 1:
            kept, _ = keep_k_anonymous(kept, k_anonymity)
        store.put_bytes(obj.uri, parquet_bytes(kept))
    return pa.concat_tables(removed) if removed else table.schema.empty_table()


def remove_customer(store: ObjectStore, bucket: str, user_token: str, k_anonymity: int = 1) -> LakeErasure:
    """Remove the customer's rows from `customers` (kept `k_anonymity`-anonymous) and `cards` (and say
    which card tokens were theirs)."""
    customers = _rewrite_without(store, bucket, tables.CUSTOMERS, user_token, k_anonymity)
    cards = _rewrite_without(store, bucket, tables.CARDS, user_token)
    return LakeErasure(customers.num_rows, cards.num_rows, set(cards["card_token"].to_pylist()))
