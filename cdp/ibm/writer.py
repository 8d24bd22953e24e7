"""Clean Arrow tables -> byte-compatible IBM CSV files (LF line endings, quotes only around commas).

Users and cards are small (thousands of rows) and are written row by row. Transactions run to tens of
millions of rows, so their text is built column-wise with pyarrow.compute and written slice by slice.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.ibm.schema import (
    CARDS_HEADER,
    CARDS_SCHEMA,
    CHANNEL_LABELS,
    TRANSACTIONS_HEADER,
    TRANSACTIONS_SCHEMA,
    USERS_HEADER,
    USERS_SCHEMA,
)

# Rows formatted at once: keeps every intermediate string array far below the 2 GiB offset limit.
FORMAT_SLICE_ROWS = 1 << 20


# ---- users and cards (small files) ------------------------------------------------------------


def _header_line(header: Sequence[str]) -> str:
    return ",".join(header) + "\n"


def _require_columns(table: pa.Table, schema: pa.Schema, what: str) -> None:
    missing = [name for name in schema.names if name != "line" and name not in table.column_names]
    if missing:
        raise ValueError(f"{what} table lacks columns: {', '.join(missing)}")


def _dollars_with_commas(value: int) -> str:
    """`29278` -> `$29,278 ` (the users file writes money with thousands commas and a trailing space)."""
    return f"${value:,} "


def _zip_without_leading_zeros(zip5: str) -> str:
    return zip5.lstrip("0") or "0"


def _month_year(day: date) -> str:
    return f"{day.month:02d}/{day.year}"


def _write_rows(path: Path, header: Sequence[str], rows: Iterable[list[Any]]) -> int:
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(_header_line(header))
        writer = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _user_row(r: dict[str, Any]) -> list[Any]:
    return [
        r["person"],
        r["current_age"],
        r["retirement_age"],
        r["birth_year"],
        r["birth_month"],
        r["gender"],
        r["address"],
        r["apartment"] if r["apartment"] is not None else "",
        r["city"],
        r["state"],
        _zip_without_leading_zeros(r["zipcode"]),
        f"{r['latitude']:.2f}",
        f"{r['longitude']:.2f}",
        _dollars_with_commas(r["per_capita_income"]),
        _dollars_with_commas(r["yearly_income"]),
        _dollars_with_commas(r["total_debt"]),
        r["fico_score"],
        r["num_credit_cards"],
    ]


def _card_row(r: dict[str, Any]) -> list[Any]:
    return [
        r["user"],
        r["card_index"],
        r["card_brand"],
        r["card_type"],
        r["card_number"],
        _month_year(r["expires"]),
        r["cvv"],
        "YES" if r["has_chip"] else "NO",
        r["cards_issued"],
        f"${r['credit_limit']}",
        _month_year(r["acct_open_date"]),
        r["year_pin_last_changed"],
        "Yes" if r["card_on_dark_web"] else "No",
    ]


def write_users(table: pa.Table, path: Path) -> int:
    """Write `sd254_users.csv` from a USERS_SCHEMA table (its `line` column, if any, is ignored).

    Rows are written in table order: the file's row order is the user id, so sort by `user` first.
    """
    _require_columns(table, USERS_SCHEMA, "users")
    return _write_rows(Path(path), USERS_HEADER, (_user_row(r) for r in table.to_pylist()))


def write_cards(table: pa.Table, path: Path) -> int:
    """Write `sd254_cards.csv` from a CARDS_SCHEMA table (its `line` column, if any, is ignored)."""
    _require_columns(table, CARDS_SCHEMA, "cards")
    return _write_rows(Path(path), CARDS_HEADER, (_card_row(r) for r in table.to_pylist()))


# ---- transactions (large file, column-wise) ---------------------------------------------------

_CHANNEL_NAMES = pa.array(list(CHANNEL_LABELS))
_CHANNEL_TEXT = pa.array(list(CHANNEL_LABELS.values()))


def _quote_if_comma(text: pa.Array) -> pa.Array:
    """CSV-quote the values that hold a comma (values here never hold quotes or newlines)."""
    has_comma = pc.match_substring(text, ",")
    if not pc.any(has_comma).as_py():
        return text
    quoted = pc.binary_join_element_wise('"', text, '"', "")
    return pc.if_else(has_comma, quoted, text)


def _text(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.string())


def _two_digits(values: pa.Array) -> pa.Array:
    return pc.utf8_lpad(_text(values), 2, "0")


def _amount_text(cents: pa.Array) -> pa.Array:
    """Signed cents -> `$134.09` / `$-473.00`."""
    magnitude = pc.abs(cents)
    dollars = pc.divide(magnitude, 100)
    fraction = pc.subtract(magnitude, pc.multiply(dollars, 100))
    sign = pc.if_else(pc.less(cents, 0), "-", "")
    return pc.binary_join_element_wise("$", sign, _text(dollars), ".", _two_digits(fraction), "")


def _channel_text(channel: pa.Array) -> pa.Array:
    index = pc.index_in(channel, value_set=_CHANNEL_NAMES)
    if index.null_count:
        bad = pc.unique(pc.filter(channel, pc.is_null(index))).to_pylist()
        raise ValueError(f"unknown channel values: {bad[:5]}")
    return pc.take(_CHANNEL_TEXT, index)


def _zip_text(zip5: pa.Array) -> pa.Array:
    """`02921` -> `2921.0`; null -> empty."""
    trimmed = pc.utf8_ltrim(zip5, "0")
    trimmed = pc.if_else(pc.equal(trimmed, ""), "0", trimmed)
    return pc.fill_null(pc.binary_join_element_wise(trimmed, ".0", ""), "")


def _format_slice(table: pa.Table) -> pa.Array:
    """One string per row, each ending in LF."""
    col = {name: table.column(name).combine_chunks() for name in TRANSACTIONS_SCHEMA.names if name != "line"}
    ts = col["ts"]
    time = pc.binary_join_element_wise(_two_digits(pc.hour(ts)), _two_digits(pc.minute(ts)), ":")
    errors = pc.fill_null(pc.binary_join(col["errors"], ","), "")
    fields = [
        _text(col["user"]),
        _text(col["card"]),
        _text(pc.year(ts)),
        _text(pc.month(ts)),
        _text(pc.day(ts)),
        time,
        _amount_text(col["amount_cents"]),
        _channel_text(col["channel"]),
        _text(col["merchant_id"]),
        _quote_if_comma(col["merchant_city"]),
        _quote_if_comma(pc.fill_null(col["merchant_state"], "")),
        _zip_text(col["zip"]),
        _text(col["mcc"]),
        _quote_if_comma(errors),
        pc.if_else(col["is_fraud"], "Yes", "No"),
    ]
    row = pc.binary_join_element_wise(*fields, ",")
    lines = pc.binary_join_element_wise(row, "", "\n")
    if lines.null_count:
        raise ValueError("transactions table has nulls in a column that must not be null")
    return lines


def _concatenated_bytes(lines: pa.Array) -> memoryview:
    """The bytes of a string array's values back to back, without copying."""
    if len(lines) == 0:
        return memoryview(b"")
    _, offsets, data = lines.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)
    return memoryview(data)[bounds[lines.offset] : bounds[lines.offset + len(lines)]]


def _iter_formatted(table: pa.Table) -> Iterable[memoryview]:
    _require_columns(table, TRANSACTIONS_SCHEMA, "transactions")
    for start in range(0, table.num_rows, FORMAT_SLICE_ROWS):
        piece = table.slice(start, FORMAT_SLICE_ROWS)
        yield _concatenated_bytes(_format_slice(piece))


def format_transactions(table: pa.Table) -> bytes:
    """The CSV bytes of these TRANSACTIONS_SCHEMA rows (no header), in table order."""
    return b"".join(_iter_formatted(table))


class TransactionsWriter:
    """Writes a transactions file: the header on open, then each appended chunk of rows.

    >>> with TransactionsWriter(path) as w:
    ...     for chunk in chunks:
    ...         w.write(chunk)
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows_written = 0
        self._file: IO[bytes] | None = open(self.path, "wb")
        self._file.write(_header_line(TRANSACTIONS_HEADER).encode())

    def write(self, table: pa.Table) -> int:
        """Append the rows of a TRANSACTIONS_SCHEMA table (a `line` column is ignored); return their count."""
        if self._file is None:
            raise ValueError(f"{self.path.name}: writer is closed")
        for part in _iter_formatted(table):
            self._file.write(part)
        self.rows_written += table.num_rows
        return table.num_rows

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TransactionsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
