"""Clean transactions (TRANSACTIONS_SCHEMA) -> protected lake rows (TRANSACTIONS_LAKE_SCHEMA).

Used by the batch job and by the stream path alike, so a transaction gets the same `txn_id` and the same
columns whichever way it reaches the lake.

`txn_id` = the card token's keyed part + "-" + the row's source line: unique (a card has one row per
line), stable across runs, and — being built on the keyed card token — it reveals neither the user nor the
card without the token key.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from cdp.lake.tables import TRANSACTIONS_LAKE_SCHEMA
from cdp.security.protector import Protector


def transaction_ids(card_tokens: pa.Array, lines: pa.Array) -> pa.Array:
    """Lake transaction ids from card tokens (`crd_…`) and source line numbers."""
    keyed = pc.utf8_slice_codeunits(card_tokens, 4)
    return pc.binary_join_element_wise(keyed, pc.cast(lines, pa.string()), "-")


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
