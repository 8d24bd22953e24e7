"""Real or generated IBM CSV -> clean typed Arrow tables, every rejected row quarantined with a reason.

Users and cards are small and read whole; transactions are streamed in chunks of about `chunk_bytes`.
Per file, rows read == rows accepted + rows quarantined (see `Quarantine.stats`). Reasons for personal-
data columns never quote the value, and rejected users/cards rows are quarantined without their text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.ibm import fields
from cdp.ibm.quarantine import Quarantine
from cdp.ibm.rows import (
    RowFailures,
    Segment,
    SourceFormatError,
    TextRows,
    check_header,
    iter_segments,
    plan_segments,
    row_text,
    segment_bytes,
    stream_text_rows,
    structural_bytes,
    typed_rows,
)
from cdp.ibm.schema import (
    CARD_BRANDS,
    CARD_TYPES,
    CARDS_FILE,
    CARDS_HEADER,
    CARDS_SCHEMA,
    CHANNELS,
    ERROR_CODES,
    GENDERS,
    TRANSACTIONS_ALIASES,
    TRANSACTIONS_HEADER,
    TRANSACTIONS_PER_USER_GLOB,
    TRANSACTIONS_SCHEMA,
    USERS_FILE,
    USERS_HEADER,
    USERS_SCHEMA,
)

__all__ = [
    "Segment",
    "iter_segments",
    "plan_segments",
    "SourceFiles",
    "SourceFormatError",
    "card_keys",
    "find_source_files",
    "iter_transactions",
    "read_cards",
    "read_transactions",
    "read_users",
    "read_valid_segment",
]

INT32_MAX = 2**31 - 1
_YES_NO = {"Yes": True, "No": False}


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(tables) if tables else schema.empty_table()


# ---- users ------------------------------------------------------------------------------------


def _parse_users(rows: TextRows, failures: RowFailures) -> dict[str, pa.Array]:
    c = rows.columns
    out: dict[str, pa.Array] = {}

    def take(clean: str, header: str, parsed: fields.Parsed, reason: str) -> None:
        failures.check(header, parsed.ok, f"{header}: {reason}")
        out[clean] = parsed.values

    take("person", "Person", fields.required_text(c["Person"]), "empty")
    take("current_age", "Current Age", fields.integer(c["Current Age"], pa.int16(), 0, 150), "not an age")
    take(
        "retirement_age",
        "Retirement Age",
        fields.integer(c["Retirement Age"], pa.int16(), 0, 150),
        "not an age",
    )
    take("birth_year", "Birth Year", fields.integer(c["Birth Year"], pa.int16(), 1850, 2100), "not a year")
    take("birth_month", "Birth Month", fields.integer(c["Birth Month"], pa.int8(), 1, 12), "not a month")
    take(
        "gender",
        "Gender",
        fields.choice(c["Gender"], {g: g for g in GENDERS}, pa.string()),
        "expected Female/Male",
    )
    take("address", "Address", fields.required_text(c["Address"]), "empty")
    take("apartment", "Apartment", fields.optional_text(c["Apartment"]), "unreadable")
    take("city", "City", fields.required_text(c["City"]), "empty")
    take("state", "State", fields.required_text(c["State"]), "empty")
    take("zipcode", "Zipcode", fields.zip_code(c["Zipcode"], optional=False), "not a US zip")
    take("latitude", "Latitude", fields.decimal_number(c["Latitude"], -90, 90), "not a latitude")
    take("longitude", "Longitude", fields.decimal_number(c["Longitude"], -180, 180), "not a longitude")
    for clean, header in (
        ("per_capita_income", "Per Capita Income - Zipcode"),
        ("yearly_income", "Yearly Income - Person"),
        ("total_debt", "Total Debt"),
    ):
        take(clean, header, fields.whole_dollars(c[header], grouped=True), "not a dollar amount")
    take(
        "fico_score", "FICO Score", fields.integer(c["FICO Score"], pa.int16(), 300, 850), "not a FICO score"
    )
    take(
        "num_credit_cards",
        "Num Credit Cards",
        fields.integer(c["Num Credit Cards"], pa.int8(), 0, 99),
        "not a card count",
    )
    return out


def read_users(path: Path, quarantine: Quarantine) -> pa.Table:
    """Read `sd254_users.csv` into USERS_SCHEMA; `user` is the row's position (line - 2)."""
    path = Path(path)
    stats = quarantine.stats_for(path.name)
    tables = []
    for rows in stream_text_rows(path, USERS_HEADER, quarantine, keep_raw=False):
        failures = RowFailures(len(rows))
        clean = _parse_users(rows, failures)
        rejected = failures.report(quarantine, path.name, rows.lines, raw=None)
        stats.add(len(rows) - rejected, rejected)
        lines = pa.array(rows.lines, pa.int64())
        clean = {"line": lines, "user": pc.cast(pc.subtract(lines, 2), pa.int32()), **clean}
        table = pa.Table.from_pydict(clean, schema=USERS_SCHEMA)
        tables.append(table.filter(failures.accepted))
    return _concat(tables, USERS_SCHEMA)


# ---- cards ------------------------------------------------------------------------------------


def _parse_cards(rows: TextRows, failures: RowFailures) -> dict[str, pa.Array]:
    c = rows.columns
    out: dict[str, pa.Array] = {}

    def take(clean: str, header: str, parsed: fields.Parsed, reason: str) -> None:
        failures.check(header, parsed.ok, f"{header}: {reason}")
        out[clean] = parsed.values

    take("user", "User", fields.integer(c["User"], pa.int32(), 0, INT32_MAX), "not a user id")
    take("card_index", "CARD INDEX", fields.integer(c["CARD INDEX"], pa.int8(), 0, 127), "not a card index")
    take(
        "card_brand",
        "Card Brand",
        fields.choice(c["Card Brand"], {b: b for b in CARD_BRANDS}, pa.string()),
        "not a known brand",
    )
    take(
        "card_type",
        "Card Type",
        fields.choice(c["Card Type"], {t: t for t in CARD_TYPES}, pa.string()),
        "not a known card type",
    )
    take(
        "card_number",
        "Card Number",
        fields.matching(c["Card Number"], r"^\d{15,16}$"),
        "expected 15 or 16 digits",
    )
    take("expires", "Expires", fields.month_year(c["Expires"]), "expected MM/YYYY")
    take(
        "cvv",
        "CVV",
        fields.padded_digits(c["CVV"], 3),
        "expected 3 digits",
    )
    take(
        "has_chip",
        "Has Chip",
        fields.choice(c["Has Chip"], {"YES": True, "NO": False}, pa.bool_()),
        "expected YES/NO",
    )
    take("cards_issued", "Cards Issued", fields.integer(c["Cards Issued"], pa.int8(), 0, 127), "not a count")
    take(
        "credit_limit",
        "Credit Limit",
        fields.whole_dollars(c["Credit Limit"], grouped=True),
        "not a dollar amount",
    )
    take("acct_open_date", "Acct Open Date", fields.month_year(c["Acct Open Date"]), "expected MM/YYYY")
    take(
        "year_pin_last_changed",
        "Year PIN last Changed",
        fields.integer(c["Year PIN last Changed"], pa.int16(), 1900, 2100),
        "not a year",
    )
    take(
        "card_on_dark_web",
        "Card on Dark Web",
        fields.choice(c["Card on Dark Web"], _YES_NO, pa.bool_()),
        "expected Yes/No",
    )
    return out


def _check_card_keys(
    clean: dict[str, pa.Array],
    failures: RowFailures,
    known_users: set[int] | None,
    seen: set[tuple[int, int]],
) -> None:
    """Unknown users and repeated (user, card index) pairs; the ids are not personal data."""
    users = clean["user"].to_pylist()
    cards = clean["card_index"].to_pylist()
    unknown = np.zeros(len(users), dtype=bool)
    duplicate = np.zeros(len(users), dtype=bool)
    for i, (user, card) in enumerate(zip(users, cards, strict=True)):
        if failures.failed[i]:
            continue
        if known_users is not None and user not in known_users:
            unknown[i] = True
        elif (user, card) in seen:
            duplicate[i] = True
        else:
            seen.add((user, card))
    failures.check("User", ~unknown, "unknown user", lambda idx: [f"user {users[i]}" for i in idx])
    failures.check(
        "CARD INDEX",
        ~duplicate,
        "duplicate card",
        lambda idx: [f"user {users[i]}, card {cards[i]}" for i in idx],
    )


def read_cards(path: Path, quarantine: Quarantine, known_users: set[int] | None = None) -> pa.Table:
    """Read `sd254_cards.csv` into CARDS_SCHEMA; cards of users not in `known_users` are quarantined."""
    path = Path(path)
    stats = quarantine.stats_for(path.name)
    tables = []
    seen: set[tuple[int, int]] = set()
    for rows in stream_text_rows(path, CARDS_HEADER, quarantine, keep_raw=False):
        failures = RowFailures(len(rows))
        clean = _parse_cards(rows, failures)
        _check_card_keys(clean, failures, known_users, seen)
        rejected = failures.report(quarantine, path.name, rows.lines, raw=None)
        stats.add(len(rows) - rejected, rejected)
        clean = {"line": pa.array(rows.lines, pa.int64()), **clean}
        tables.append(pa.Table.from_pydict(clean, schema=CARDS_SCHEMA).filter(failures.accepted))
    return _concat(tables, CARDS_SCHEMA)


def card_keys(cards: pa.Table) -> set[tuple[int, int]]:
    """The (user, card index) pairs of a cards table: the `known_cards` of `iter_transactions`."""
    users = cards.column("user").to_pylist()
    return set(zip(users, cards.column("card_index").to_pylist(), strict=True))


# ---- transactions -----------------------------------------------------------------------------


def _texts(text: pa.Array) -> Callable[[np.ndarray], list[str]]:
    """A `detail` function quoting the raw values of a (non-personal) column."""
    return lambda indices: [repr(text[int(i)].as_py()) for i in indices]


def _parse_transactions(
    rows: TextRows, failures: RowFailures, known_cards: set[tuple[int, int]] | None
) -> dict[str, pa.Array]:
    c = rows.columns
    user = fields.integer(c["User"], pa.int32(), 0, INT32_MAX)
    failures.check("User", user.ok, "User: not a user id", _texts(c["User"]))
    card = fields.integer(c["Card"], pa.int8(), 0, 127)
    failures.check("Card", card.ok, "Card: not a card index", _texts(c["Card"]))

    year = fields.integer(c["Year"], pa.int64(), 1900, 2100)
    failures.check("Year", year.ok, "Year: not a year", _texts(c["Year"]))
    month = fields.integer(c["Month"], pa.int64(), 1, 12)
    failures.check("Month", month.ok, "Month: not a month", _texts(c["Month"]))
    day = fields.integer(c["Day"], pa.int64(), 1, 31)
    failures.check("Day", day.ok, "Day: not a day of the month", _texts(c["Day"]))
    y, m, d = (p.values.to_numpy() for p in (year, month, day))
    parts_ok = ~failures.failed
    days, real = fields.calendar_dates(
        np.where(parts_ok, y, 1970), np.where(parts_ok, m, 1), np.where(parts_ok, d, 1)
    )
    failures.check(
        "Year/Month/Day",
        real,
        "Year/Month/Day: not a calendar date",
        lambda idx: [f"{y[i]:04d}-{m[i]:02d}-{d[i]:02d}" for i in idx],
    )
    seconds, time_ok = fields.clock_time(c["Time"])
    failures.check("Time", time_ok, "Time: not an HH:MM time", _texts(c["Time"]))
    ts = pa.array(days * 86_400 + seconds.to_numpy(), pa.int64()).cast(pa.timestamp("s"))

    amount = fields.amount_cents(c["Amount"])
    failures.check("Amount", amount.ok, "Amount: not a dollar amount like $12.34", _texts(c["Amount"]))
    channel = fields.choice(c["Use Chip"], CHANNELS, pa.string())
    failures.check("Use Chip", channel.ok, "Use Chip: not a known channel", _texts(c["Use Chip"]))
    merchant = fields.int64_hash(c["Merchant Name"])
    failures.check(
        "Merchant Name", merchant.ok, "Merchant Name: not a 64-bit integer", _texts(c["Merchant Name"])
    )
    city = fields.required_text(c["Merchant City"])
    failures.check("Merchant City", city.ok, "Merchant City: empty")
    state = fields.optional_text(c["Merchant State"])
    zip_ = fields.zip_code(c["Zip"], optional=True)
    failures.check("Zip", zip_.ok, "Zip: not a US zip", _texts(c["Zip"]))
    mcc = fields.integer(c["MCC"], pa.int16(), 0, 9999)
    failures.check("MCC", mcc.ok, "MCC: not an integer", _texts(c["MCC"]))
    errors, errors_ok, unknown_code = fields.code_lists(c["Errors?"], ERROR_CODES)
    failures.check("Errors?", errors_ok, "Errors?: unknown error code", _texts(unknown_code))
    fraud = fields.choice(c["Is Fraud?"], _YES_NO, pa.bool_())
    failures.check("Is Fraud?", fraud.ok, "Is Fraud?: expected Yes/No", _texts(c["Is Fraud?"]))

    if known_cards is not None:
        u = user.values.to_numpy().astype(np.int64)
        k = card.values.to_numpy().astype(np.int64)
        keys = pa.array(u * 256 + k)
        known_keys = pa.array([ku * 256 + kc for ku, kc in known_cards], pa.int64())
        known = pc.is_in(keys, value_set=known_keys).to_numpy(zero_copy_only=False)
        failures.check("Card", known, "unknown card", lambda idx: [f"user {u[i]}, card {k[i]}" for i in idx])

    return {
        "user": user.values,
        "card": card.values,
        "ts": ts,
        "amount_cents": amount.values,
        "channel": channel.values,
        "merchant_id": merchant.values,
        "merchant_city": city.values,
        "merchant_state": state.values,
        "zip": zip_.values,
        "mcc": mcc.values,
        "errors": errors,
        "is_fraud": fraud.values,
    }


# The typed fast path: the CSV parser types the integer and flag columns itself and hands the others over
# as raw bytes; a segment is accepted in one piece when every row passes every check, otherwise the
# segment is read again by the text path above, which quarantines row by row. The checks below are never
# laxer than the text path: accepting a row here gives exactly the values the text path gives.
_FAST_COLUMN_TYPES: dict[str, pa.DataType] = {
    **{header: pa.binary() for header in TRANSACTIONS_HEADER},
    "User": pa.int32(),
    "Card": pa.int8(),
    "Year": pa.int16(),
    "Month": pa.int8(),
    "Day": pa.int8(),
    "Merchant Name": pa.int64(),
    "MCC": pa.int16(),
    "Is Fraud?": pa.bool_(),
}
# (column, lowest, highest, digits of the longest text the text path takes)
_FAST_INTEGERS = (
    ("User", 0, INT32_MAX, 10),
    ("Card", 0, 127, 3),
    ("Year", 1900, 2100, 4),
    ("Month", 1, 12, 2),
    ("Day", 1, 31, 2),
    ("MCC", 0, 9999, 4),
)


def _known_keys(known_cards: set[tuple[int, int]] | None) -> pa.Array | None:
    if known_cards is None:
        return None
    return pa.array([user * 256 + card for user, card in known_cards], pa.int64())


def _fast_transactions(
    data: pa.Buffer,
    first_line: int,
    known_keys: pa.Array | None,
    holds_cr: bool = True,
    dictionary_text: bool = False,
) -> pa.Table | None:
    """The segment's rows as TRANSACTIONS_SCHEMA (DICTIONARY_TRANSACTIONS_SCHEMA with `dictionary_text`)
    when every one of them is valid, else None."""
    typed = typed_rows(
        data, TRANSACTIONS_HEADER, _FAST_COLUMN_TYPES, holds_cr, true_values=["Yes"], false_values=["No"]
    )
    if typed is None or typed.num_rows == 0:
        return None
    n = typed.num_rows
    c = {h: typed.column(i).chunk(0) for i, h in enumerate(TRANSACTIONS_HEADER)}
    ints = {h: c[h].to_numpy() for h, *_ in _FAST_INTEGERS}
    for h, low, high, _ in _FAST_INTEGERS:
        if ints[h].min() < low or ints[h].max() > high:
            return None
    # The parser also takes "007" or "+7", which the text path may refuse: the segment's bytes add up
    # only if every integer and flag was written in its shortest form.
    content = sum(fields.decimal_text_bytes(ints[h], digits) for h, _, _, digits in _FAST_INTEGERS)
    content += fields.decimal_text_bytes(c["Merchant Name"].to_numpy(), 19)
    content += 2 * n + int(pc.sum(c["Is Fraud?"]).as_py() or 0)  # "No", "Yes"
    # Exact only if no value holds a quote or line break: Time and Amount are checked byte by byte
    # below, the other text columns by `distinct_parsed`, which refuses such values.
    content += sum(fields.text_bytes(c[h]) for h, t in _FAST_COLUMN_TYPES.items() if t == pa.binary())
    structure = structural_bytes(data, n, len(TRANSACTIONS_HEADER))
    if structure is None or content + structure != data.size:
        return None
    if known_keys is not None:
        keys = pa.array(ints["User"].astype(np.int64) * 256 + ints["Card"])
        if not pc.all(pc.is_in(keys, value_set=known_keys)).as_py():
            return None

    days = fields.epoch_days(ints["Year"], ints["Month"], ints["Day"])
    seconds = fields.fixed_clock_time(c["Time"])
    if days is None or seconds is None:
        return None
    columns = {
        "amount_cents": fields.dollar_cents(c["Amount"]),
        "channel": fields.distinct_parsed(
            c["Use Chip"], lambda t: fields.choice(t, CHANNELS, pa.string()), dictionary_text
        ),
        "merchant_city": fields.distinct_parsed(c["Merchant City"], fields.required_text, dictionary_text),
        "merchant_state": fields.distinct_parsed(c["Merchant State"], fields.optional_text),
        "zip": fields.distinct_parsed(c["Zip"], lambda t: fields.zip_code(t, optional=True)),
        "errors": fields.distinct_parsed(
            c["Errors?"], lambda t: fields.Parsed(*fields.code_lists(t, ERROR_CODES)[:2])
        ),
    }
    if any(values is None for values in columns.values()):
        return None
    columns.update(
        line=pa.array(np.arange(first_line, first_line + n, dtype=np.int64)),
        user=c["User"],
        card=c["Card"],
        ts=pa.array(days * 86_400 + seconds, pa.int64()).cast(pa.timestamp("s")),
        merchant_id=c["Merchant Name"],
        mcc=c["MCC"],
        is_fraud=c["Is Fraud?"],
    )
    schema = DICTIONARY_TRANSACTIONS_SCHEMA if dictionary_text else TRANSACTIONS_SCHEMA
    return pa.Table.from_pydict(columns, schema=schema)


# TRANSACTIONS_SCHEMA with the text columns of few distinct values (never null) as dictionary arrays:
# rows sorted or kept for a while move 4-byte indices instead of strings.
DICTIONARY_TEXT_COLUMNS = ("channel", "merchant_city")
DICTIONARY_TRANSACTIONS_SCHEMA = pa.schema(
    [
        pa.field(f.name, pa.dictionary(pa.int32(), f.type)) if f.name in DICTIONARY_TEXT_COLUMNS else f
        for f in TRANSACTIONS_SCHEMA
    ]
)


def as_dictionary_text(table: pa.Table) -> pa.Table:
    """TRANSACTIONS_SCHEMA rows as DICTIONARY_TRANSACTIONS_SCHEMA."""
    for name in DICTIONARY_TEXT_COLUMNS:
        i = table.schema.get_field_index(name)
        if not pa.types.is_dictionary(table.schema.field(i).type):
            table = table.set_column(i, name, pc.dictionary_encode(table[name]))
    return table


def read_valid_segment(
    path: Path,
    segment: Segment,
    known_cards: set[tuple[int, int]] | None = None,
    dictionary_text: bool = False,
) -> pa.Table | None:
    """The typed fast path alone: the segment's rows (TRANSACTIONS_SCHEMA, file order) when every row
    is valid, else None (the text path then reads the segment and quarantines the invalid rows)."""
    path = Path(path)
    try:
        mapped = segment_bytes(path, segment)
        return _fast_transactions(
            mapped.data, segment.first_line, _known_keys(known_cards), mapped.holds_cr, dictionary_text
        )
    except pa.ArrowInvalid:  # e.g. text that is not UTF-8: the text path decides what happens
        return None


def read_text_segment(
    path: Path, quarantine: Quarantine, known_cards: set[tuple[int, int]] | None, segment: Segment
) -> Iterator[pa.Table]:
    """The reference text path over one segment: accepted rows (TRANSACTIONS_SCHEMA, file order), every
    rejected row quarantined with its line."""
    return _text_transactions(Path(path), quarantine, known_cards, 64 << 20, segment)


def _text_transactions(
    path: Path,
    quarantine: Quarantine,
    known_cards: set[tuple[int, int]] | None,
    chunk_bytes: int,
    segment: Segment | None,
) -> Iterator[pa.Table]:
    """The reference text path: every field parsed from text, rejected rows quarantined one by one."""
    stats = quarantine.stats_for(path.name)
    for rows in stream_text_rows(
        path, TRANSACTIONS_HEADER, quarantine, keep_raw=True, block_size=chunk_bytes, segment=segment
    ):
        failures = RowFailures(len(rows))
        clean = _parse_transactions(rows, failures, known_cards)
        rejected = failures.report(
            quarantine, path.name, rows.lines, raw=lambda i, cols=rows.columns: row_text(cols, i)
        )
        stats.add(len(rows) - rejected, rejected)
        clean = {"line": pa.array(rows.lines, pa.int64()), **clean}
        table = pa.Table.from_pydict(clean, schema=TRANSACTIONS_SCHEMA)
        if rejected:
            table = table.filter(failures.accepted)
        if table.num_rows:
            yield table


def iter_transactions(
    path: Path,
    quarantine: Quarantine,
    known_cards: set[tuple[int, int]] | None = None,
    chunk_bytes: int = 64 << 20,
    segment: Segment | None = None,
    fast_path: bool = True,
) -> Iterator[pa.Table]:
    """Stream a transactions file as TRANSACTIONS_SCHEMA chunks of accepted rows, in file order.

    Rows of cards not in `known_cards` ((user, card index) pairs) are quarantined as unknown cards.
    With `segment` (see `plan_segments`) only that byte range is read, with exact file line numbers.
    The file is read in segments of about `chunk_bytes`; a segment whose rows are all valid is read by the
    typed fast path, any other by the text path (`fast_path=False`: always the text path). Both give the
    same rows, lines and quarantine records.
    """
    path = Path(path)
    if not fast_path:
        yield from _text_transactions(path, quarantine, known_cards, chunk_bytes, segment)
        return
    check_header(path, TRANSACTIONS_HEADER, quote_found=True)
    stats = quarantine.stats_for(path.name)
    for part in [segment] if segment is not None else iter_segments(path, chunk_bytes):
        table = read_valid_segment(path, part, known_cards)
        if table is None:
            yield from _text_transactions(path, quarantine, known_cards, chunk_bytes, part)
        else:
            stats.add(table.num_rows, 0)
            yield table


def read_transactions(
    path: Path, quarantine: Quarantine, known_cards: set[tuple[int, int]] | None = None
) -> pa.Table:
    """A whole (small) transactions file as one table; use `iter_transactions` for large files."""
    return _concat(list(iter_transactions(path, quarantine, known_cards)), TRANSACTIONS_SCHEMA)


# ---- locating the files -----------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFiles:
    """The source files found in a folder; transactions may be one file or one file per user."""

    users: Path | None
    cards: Path | None
    transactions: tuple[Path, ...]


_USER_NUMBER = re.compile(r"User(\d+)_")


def find_source_files(directory: Path) -> SourceFiles:
    """Find the users, cards and transactions files (any published name, or per-user files)."""
    directory = Path(directory)
    users = directory / USERS_FILE
    cards = directory / CARDS_FILE
    transactions: tuple[Path, ...] = ()
    for alias in TRANSACTIONS_ALIASES:
        if (directory / alias).is_file():
            transactions = (directory / alias,)
            break
    else:
        per_user = [p for p in directory.glob(TRANSACTIONS_PER_USER_GLOB) if p.is_file()]
        transactions = tuple(
            sorted(per_user, key=lambda p: (int(_USER_NUMBER.match(p.name).group(1)), p.name))
        )
    return SourceFiles(
        users=users if users.is_file() else None,
        cards=cards if cards.is_file() else None,
        transactions=transactions,
    )
