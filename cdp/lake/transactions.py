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
    """Months since 1970-01 of each timestamp, by integer arithmetic on the days (the proleptic Gregorian
    civil-from-days algorithm; numpy's datetime64[M] conversion takes twice the time)."""
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    seconds = ts.cast(pa.timestamp("s")).to_numpy().view(np.int64)
    z = seconds // 86_400 + 719_468  # days since 0000-03-01
    era = z // 146_097
    doe = z - era * 146_097  # day of the 400-year era
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # day of the year that starts in March
    mp = (5 * doy + 2) // 153  # month, March = 0
    march_year = yoe + era * 400
    # months since 0000-03, shifted to months since 1970-01 (1970-01 is month 10 of the year 1969)
    return march_year * 12 + mp - (1969 * 12 + 10)


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


def _card_tokens(protector: Protector, clean: pa.Table) -> tuple[pa.Array, pa.Array, pa.Array] | None:
    """User tokens, card tokens and the cards' keyed parts of the rows, one HMAC and one hash lookup per
    distinct card (the keyed part is cut from each distinct token, not from every row's); None when an
    id is missing (`Protector.protect_transactions` then decides)."""
    users, cards = clean["user"], clean["card"]
    if users.null_count or cards.null_count:
        return None
    key = users.to_numpy().astype(np.int64) * 256 + cards.to_numpy().astype(np.int64)
    encoded = pc.dictionary_encode(pa.array(key))
    distinct = encoded.dictionary.to_numpy()
    tokens = protector.tokens
    card_tokens = pa.array([tokens.card_token(k // 256, k % 256) for k in distinct.tolist()], pa.string())
    user_tokens = pa.array([tokens.user_token(k // 256) for k in distinct.tolist()], pa.string())
    rows = encoded.indices
    keyed = pc.utf8_slice_codeunits(card_tokens, 4)
    return user_tokens.take(rows), card_tokens.take(rows), keyed.take(rows)


def protect_transactions_for_lake(protector: Protector, clean: pa.Table) -> pa.Table:
    """Tokens instead of ids, a keyed `txn_id`, partition columns; nothing else changes."""
    tokens = _card_tokens(protector, clean)
    rest = clean.drop_columns(["line", "user", "card"])
    if tokens is None:
        protected = protector.protect_transactions(clean.drop_columns(["line"]))
        user_tokens, card_tokens = protected["user_token"], protected["card_token"]
        txn_ids = transaction_ids(card_tokens, clean["line"])
    else:
        user_tokens, card_tokens, keyed = tokens
        txn_ids = pc.binary_join_element_wise(keyed, pc.cast(clean["line"], pa.string()), "-")
    months = _months_since_epoch(clean["ts"])
    columns = {
        "txn_id": txn_ids,
        "user_token": user_tokens,
        "card_token": card_tokens,
        **{name: rest[name] for name in rest.column_names},
        "source_line": clean["line"],
        "year": pa.array((months // 12 + 1970).astype(np.int32)),
        "month": pa.array((months % 12 + 1).astype(np.int32)),
    }
    return pa.table(columns).select(TRANSACTIONS_LAKE_SCHEMA.names).cast(TRANSACTIONS_LAKE_SCHEMA)
