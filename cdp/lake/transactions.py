"""Clean transactions (TRANSACTIONS_SCHEMA) -> protected lake rows (TRANSACTIONS_LAKE_SCHEMA).

Used by the batch job and by the stream path alike, so a transaction gets the same `txn_id` and the same
columns whichever way it reaches the lake.

The lake keeps no id and no source order: `event_seq` = the row's source line + its card's keyed offset
in [0, 2^30) (`Tokenizer.card_order_offset`), so it grows with the line within a card (the event order of
the features: ts, event_seq, txn_id) while across cards it says nothing about the source order (the IBM
file is ordered by user: the order of lines gives the user id away). `txn_id` = the card token's keyed part
+ "-" + `event_seq`: unique (a card has one row per line), stable across runs, opaque without the card's
token secret. Source lines must stay below 2^30, so that `event_seq` < 2^31 (`features.render` packs it
with the epoch second into one BIGINT).

Rows of an erased customer cannot be protected (their tokens cannot be made any more): callers set them
apart first (`CardNumbers.erased_rows`, `split_erased`) and quarantine them with `ERASED_REASON`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.lake.tables import TRANSACTIONS_LAKE_SCHEMA
from cdp.security.errors import CustomerErased
from cdp.security.protector import Protector
from cdp.security.tokens import MAX_SOURCE_LINE

ERASED_REASON = "erased"  # quarantine reason of a row whose customer was erased


def keyed_parts(card_tokens: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The keyed part of card tokens (`crd_…` without its prefix)."""
    return pc.utf8_slice_codeunits(card_tokens, 4)


def ids_from_keyed_parts(keyed: pa.Array | pa.ChunkedArray, seqs: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Lake transaction ids from each row's keyed card part and `event_seq`."""
    return pc.binary_join_element_wise(keyed, pc.cast(seqs, pa.string()), "-")


def event_seqs(lines: pa.Array | pa.ChunkedArray, offsets: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`event_seq` of rows from their source lines and their cards' offsets; ValueError for a line beyond
    `MAX_SOURCE_LINE` (the sequence would leave the range the feature SQL packs)."""
    top = pc.max(lines).as_py()
    if top is not None and top > MAX_SOURCE_LINE:
        raise ValueError(f"source line {top} is beyond {MAX_SOURCE_LINE}: split the transactions file")
    return pc.add(lines, offsets)


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


def partition_order(clean: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """Clean transactions stably sorted by the month of `ts` (the lake's `year=/month=` partitions; not
    copied when already in that order) and each row's month since 1970-01."""
    months = _months_since_epoch(clean["ts"]) if clean.num_rows else np.zeros(0, np.int64)
    if clean.num_rows < 2 or (months[1:] >= months[:-1]).all():
        return clean, months
    # months since 1970 fit 16 bits for any year the reader accepts: numpy sorts them by radix
    order = np.argsort(months.astype(np.int16), kind="stable")
    return clean.take(pa.array(order.astype(np.int32))), months[order]


def month_runs(months: np.ndarray) -> list[tuple[int, int, int]]:
    """(month since 1970-01, start, length) of each run of equal months in sorted `months`."""
    if months.size == 0:
        return []
    starts = np.flatnonzero(np.concatenate([[True], months[1:] != months[:-1]]))
    ends = np.append(starts[1:], months.size)
    return [(int(months[a]), int(a), int(b - a)) for a, b in zip(starts, ends, strict=True)]


def year_month(month: int) -> tuple[int, int]:
    """The (year, month) of a month since 1970-01."""
    return month // 12 + 1970, month % 12 + 1


class CardNumbers:
    """The cards met so far, numbered: rows carry a card number instead of ids, and their tokens,
    `event_seq` and `txn_id` are taken from per-card arrays when written (one secret lookup per customer and
    a few HMACs per card, one hash lookup per distinct card of a batch of rows; the keyed part of a token is
    cut once per card). A card of an erased customer gets a number too, flagged (`erased_rows`)."""

    def __init__(self, protector: Protector) -> None:
        self._tokens = protector.tokens
        self._numbers: dict[int, int] = {}
        self._users: list[str | None] = []
        self._cards: list[str | None] = []
        self._offsets: list[int] = []
        self._erased: list[bool] = []
        self._any_erased = False
        self._arrays: tuple[pa.Array, pa.Array, pa.Array, pa.Array] | None = None

    def numbers(self, users: pa.Array | pa.ChunkedArray, cards: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Card numbers (int32) of rows given by user id and card index (no nulls)."""
        if users.null_count or cards.null_count:
            raise ValueError("transactions without a user or card id cannot be numbered by card")
        key = _numpy(users).astype(np.int64) * 256 + _numpy(cards).astype(np.int64)
        encoded = pc.dictionary_encode(pa.array(key))
        mapping = np.array([self._number(k) for k in encoded.dictionary.to_numpy().tolist()], np.int32)
        return pa.array(mapping[encoded.indices.to_numpy()])

    def _number(self, key: int) -> int:
        number = self._numbers.get(key)
        if number is None:
            user, index = key // 256, key % 256
            try:
                card: str | None = self._tokens.card_token(user, index)
                offset = self._tokens.card_order_offset(user, index)
                owner: str | None = self._tokens.user_token(user)
            except CustomerErased:
                card, offset, owner = None, 0, None
                self._any_erased = True
            number = self._numbers[key] = len(self._cards)
            self._cards.append(card)
            self._users.append(owner)
            self._offsets.append(offset)
            self._erased.append(card is None)
            self._arrays = None
        return number

    def erased_rows(self, numbers: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
        """True for each row (by card number) whose customer was erased; None when there is none."""
        if not self._any_erased:
            return None
        rows = np.array(self._erased, dtype=bool)[_numpy(numbers)]
        return rows if rows.any() else None

    def columns(
        self, numbers: pa.Array | pa.ChunkedArray, lines: pa.Array | pa.ChunkedArray
    ) -> dict[str, pa.Array]:
        """`txn_id`, `user_token`, `card_token` and `event_seq` of rows given by card number and source
        line (rows of live customers only)."""
        if self._arrays is None:
            cards = pa.array(self._cards, pa.string())
            offsets = pa.array(self._offsets, pa.int64())
            self._arrays = (pa.array(self._users, pa.string()), cards, keyed_parts(cards), offsets)
        users, cards, keyed, offsets = self._arrays
        seqs = event_seqs(lines, offsets.take(numbers))
        return {
            "txn_id": ids_from_keyed_parts(keyed.take(numbers), seqs),
            "user_token": users.take(numbers),
            "card_token": cards.take(numbers),
            "event_seq": seqs,
        }


def _numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.to_numpy()


def split_erased(protector: Protector, clean: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(rows of live customers, rows of erased customers) of clean transactions."""
    erased = protector.tokens.erased_rows(clean["user"])
    if erased is None:
        return clean, clean.slice(0, 0)
    mask = pa.array(erased)
    return clean.filter(pc.invert(mask)), clean.filter(mask)


def protect_transactions_for_lake(protector: Protector, clean: pa.Table) -> pa.Table:
    """Tokens instead of ids, keyed `event_seq` and `txn_id` instead of the line, partition columns;
    nothing else changes. `CustomerErased` for a row of an erased customer (see `split_erased`)."""
    cards = CardNumbers(protector)
    numbers = cards.numbers(clean["user"], clean["card"])
    erased = cards.erased_rows(numbers)
    if erased is not None:
        user = clean["user"].filter(pa.array(erased))[0].as_py()
        raise CustomerErased(protector.tokens.secret_entry(user))  # the keyed entry id, not the user id
    ids = cards.columns(numbers, clean["line"])
    rest = clean.drop_columns(["line", "user", "card"])
    months = _months_since_epoch(clean["ts"]) if clean.num_rows else np.zeros(0, np.int64)
    columns = {
        **ids,
        **{name: rest[name] for name in rest.column_names},
        "year": pa.array((months // 12 + 1970).astype(np.int32)),
        "month": pa.array((months % 12 + 1).astype(np.int32)),
    }
    return pa.table(columns).select(TRANSACTIONS_LAKE_SCHEMA.names).cast(TRANSACTIONS_LAKE_SCHEMA)
