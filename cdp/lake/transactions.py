"""Clean transactions (TRANSACTIONS_SCHEMA) -> protected lake rows (TRANSACTIONS_LAKE_SCHEMA).

Used by the batch job and by the stream path alike, so a transaction gets the same `txn_id` and the same
columns whichever way it reaches the lake.

`txn_id` = the card token's keyed part + "-" + the row's source line: unique (a card has one row per
line), stable across runs, and — being built on the keyed card token — it reveals neither the user nor the
card without the token key.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.lake.tables import TRANSACTIONS_LAKE_SCHEMA
from cdp.security.protector import Protector


def transaction_ids(card_tokens: pa.Array, lines: pa.Array) -> pa.Array:
    """Lake transaction ids from card tokens (`crd_…`) and source line numbers."""
    keyed = pc.utf8_slice_codeunits(card_tokens, 4)
    return pc.binary_join_element_wise(keyed, pc.cast(lines, pa.string()), "-")


def _months_since_epoch(ts: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    return ts.cast(pa.timestamp("s")).to_numpy().astype("datetime64[M]").astype(np.int64)


def in_partition_order(clean: pa.Table) -> pa.Table:
    """Clean transactions stably sorted by the (year, month) of `ts`, the lake's partitions (unchanged,
    not copied, when already in that order). Sorting before protection moves narrow ids, not tokens."""
    if clean.num_rows < 2:
        return clean
    months = _months_since_epoch(clean["ts"])
    if (months[1:] >= months[:-1]).all():
        return clean
    # months since 1970 fit 16 bits for any year the reader accepts: numpy sorts them by radix
    order = np.argsort(months.astype(np.int16), kind="stable")
    return clean.take(pa.array(order.astype(np.int32)))


def protect_transactions_for_lake(protector: Protector, clean: pa.Table) -> pa.Table:
    """Tokens instead of ids, a keyed `txn_id`, partition columns; nothing else changes."""
    protected = protector.protect_transactions(clean.drop_columns(["line"]))
    ts = clean["ts"]
    columns = {
        "txn_id": transaction_ids(protected["card_token"], clean["line"]),
        **{name: protected[name] for name in protected.column_names},
        "source_line": clean["line"],
        "year": pc.cast(pc.year(ts), pa.int32()),
        "month": pc.cast(pc.month(ts), pa.int32()),
    }
    return pa.table(columns).select(TRANSACTIONS_LAKE_SCHEMA.names).cast(TRANSACTIONS_LAKE_SCHEMA)
