"""Column-wise parsers from the IBM files' text to clean Arrow values.

Each parser takes a string array and returns a `Parsed`: the clean values (placeholders where invalid)
and a boolean `ok` mask. They never raise on bad data, so one bad value costs one quarantined row,
not a failed chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class Parsed:
    """Clean values of one column and which rows parsed (`ok` is a non-null boolean array)."""

    values: pa.Array
    ok: pa.Array


def _ok(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, False)


def _matches(text: pa.Array, pattern: str) -> pa.Array:
    return _ok(pc.match_substring_regex(text, pattern))


def _cast_where(text: pa.Array, ok: pa.Array, to: pa.DataType, placeholder: str = "0") -> pa.Array:
    return pc.cast(pc.if_else(ok, text, placeholder), to)


def matching(text: pa.Array, pattern: str) -> Parsed:
    """Text kept as is when it matches a regular expression."""
    return Parsed(text, _matches(text, pattern))


def padded_digits(text: pa.Array, width: int) -> Parsed:
    """1 to `width` digits, left-padded with zeros to `width` (e.g. a CVV)."""
    return Parsed(pc.utf8_lpad(text, width, "0"), _matches(text, rf"^\d{{1,{width}}}$"))


def integer(text: pa.Array, to: pa.DataType, low: int, high: int, signed: bool = False) -> Parsed:
    """Plain decimal integers within [low, high]."""
    digits = len(str(max(abs(low), abs(high))))
    if signed:
        ok = _matches(text, rf"^-?\d{{1,{digits}}}$")
    else:  # same as ^\d{1,digits}$, several times faster than a regular expression
        ok = _ok(pc.and_(pc.ascii_is_decimal(text), pc.less_equal(pc.binary_length(text), digits)))
    wide = _cast_where(text, ok, pa.int64())
    ok = pc.and_(ok, pc.and_(pc.greater_equal(wide, low), pc.less_equal(wide, high)))
    return Parsed(pc.cast(pc.if_else(ok, wide, 0), to), ok)


def int64_hash(text: pa.Array) -> Parsed:
    """A signed 64-bit integer (the merchant hash), rejecting values out of range."""
    ok = _matches(text, r"^-?\d{1,19}$")
    candidates = pc.if_else(ok, text, "0")
    try:
        return Parsed(pc.cast(candidates, pa.int64()), ok)
    except pa.ArrowInvalid:  # a 19-digit value beyond the int64 range: sort it out value by value
        values, flags = [], []
        for v, good in zip(candidates.to_pylist(), ok.to_pylist(), strict=True):
            fits = good and -(2**63) <= int(v) < 2**63
            values.append(int(v) if fits else 0)
            flags.append(fits)
        return Parsed(pa.array(values, pa.int64()), pa.array(flags, pa.bool_()))


def choice(text: pa.Array, mapping: Mapping[str, Any], to: pa.DataType) -> Parsed:
    """One of a fixed set of labels, mapped to clean values."""
    labels = pa.array(list(mapping), pa.string())
    index = pc.index_in(text, value_set=labels)
    ok = pc.is_valid(index)
    values = pc.take(pa.array(list(mapping.values()), to), pc.fill_null(index, 0))
    return Parsed(values, ok)


def required_text(text: pa.Array) -> Parsed:
    """Any non-empty text, kept as is."""
    return Parsed(text, _ok(pc.not_equal(text, "")))


def optional_text(text: pa.Array) -> Parsed:
    """Text where empty means null."""
    return Parsed(pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text), _ok(pc.is_valid(text)))


def zip_code(text: pa.Array, optional: bool) -> Parsed:
    """`91750`, `91750.0` or `2921` -> 5-character zip with leading zeros; empty -> null if optional."""
    ok = _matches(text, r"^\d{1,5}(\.0)?$")
    digits = pc.utf8_lpad(pc.replace_substring(text, ".0", ""), 5, "0")
    values = pc.if_else(ok, digits, pa.scalar(None, pa.string()))
    if optional:
        ok = pc.or_(ok, _ok(pc.equal(text, "")))
    return Parsed(values, ok)


def decimal_number(text: pa.Array, low: float, high: float) -> Parsed:
    """A plain decimal number (latitude, longitude) within [low, high]."""
    ok = _matches(text, r"^-?\d{1,3}(\.\d+)?$")
    values = _cast_where(text, ok, pa.float64())
    ok = pc.and_(ok, pc.and_(pc.greater_equal(values, low), pc.less_equal(values, high)))
    return Parsed(values, ok)


def whole_dollars(text: pa.Array, grouped: bool) -> Parsed:
    """`"$29,278 "` (grouped, users file) or `$24295` (cards file) -> int64 dollars."""
    pattern = r"^\$(\d{1,3}(,\d{3})*|\d+) ?$" if grouped else r"^\$\d+$"
    ok = _matches(text, pattern)
    digits = pc.replace_substring_regex(text, r"[$, ]", "")
    values = _cast_where(digits, ok, pa.int64())
    return Parsed(values, ok)


def amount_cents(text: pa.Array) -> Parsed:
    """`$134.09`, `$-473.00` -> signed int64 cents (exactly two decimals required)."""
    ok = _matches(text, r"^\$-?\d{1,13}\.\d\d$")
    digits = pc.replace_substring(text, "$", "")
    digits = pc.replace_substring(digits, ".", "")
    values = _cast_where(digits, ok, pa.int64())
    return Parsed(values, ok)


def month_year(text: pa.Array) -> Parsed:
    """`MM/YYYY` -> date32 of the first day of that month."""
    ok = _matches(text, r"^(0[1-9]|1[0-2])/\d{4}$")
    safe = pc.if_else(ok, text, "01/1970")
    month = pc.cast(pc.utf8_slice_codeunits(safe, 0, 2), pa.int64()).to_numpy()
    year = pc.cast(pc.utf8_slice_codeunits(safe, 3, 7), pa.int64()).to_numpy()
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    return Parsed(pa.array(months.astype("datetime64[D]"), pa.date32()), ok)


def calendar_dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since the epoch of (year, month, day), and whether each is a real date (no Feb 30)."""
    month_start = ((year - 1970) * 12 + (month - 1)).astype("datetime64[M]")
    days = month_start.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    real = (month >= 1) & (month <= 12) & (day >= 1) & (days.astype("datetime64[M]") == month_start)
    return days.astype(np.int64), real


def clock_time(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """`HH:MM` -> seconds after midnight, and which rows are valid times."""
    ok = _matches(text, r"^([01]\d|2[0-3]):[0-5]\d$")
    safe = pc.if_else(ok, text, "00:00")
    hours = pc.cast(pc.utf8_slice_codeunits(safe, 0, 2), pa.int64())
    minutes = pc.cast(pc.utf8_slice_codeunits(safe, 3, 5), pa.int64())
    return pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), ok


def code_lists(text: pa.Array, codes: Sequence[str]) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Comma-joined codes -> list<string> (empty text -> empty list).

    Returns the lists, the ok mask, and for each row the first unknown code (null when all are known).
    """
    n = len(text)
    parts = pc.split_pattern(pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text), ",")
    flat = pc.list_flatten(parts)
    known = pc.is_in(flat, value_set=pa.array(list(codes), pa.string()))
    unknown_at = np.full(n, -1, dtype=np.int64)
    if not pc.all(known).as_py():
        rows = pc.list_parent_indices(parts).to_numpy()
        bad = np.flatnonzero(~known.to_numpy(zero_copy_only=False))
        # walk backwards so the first unknown code of a row wins
        unknown_at[rows[bad[::-1]]] = bad[::-1]
    first_unknown = pc.take(flat, pa.array(unknown_at, mask=unknown_at < 0)) if len(flat) else pa.nulls(n)
    lists = pa.ListArray.from_arrays(_list_offsets(parts), flat)
    ok = pc.is_null(first_unknown)
    return lists, ok, first_unknown


def _list_offsets(parts: pa.ListArray) -> pa.Array:
    """Offsets of a list array in which null lists become empty lists."""
    lengths = pc.fill_null(pc.list_value_length(parts), 0).to_numpy()
    offsets = np.zeros(len(parts) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.array(offsets)


# ---- vectorised checks for the typed fast path (binary columns, typed integers) -------------------
# These work on the raw bytes of binary arrays and on integers the CSV parser has typed, and answer for
# a whole column: the clean values when every row is valid, else None (the reader then falls back to the
# text parsers above for the whole segment). They may refuse more than the text parsers but never less:
# where they give values, those are the values the text parsers give.


def byte_view(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (n + 1, int64) and data bytes of a binary or string array without nulls (no copy)."""
    buffers = text.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32)[text.offset : text.offset + len(text) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.empty(0, np.uint8)
    return offsets.astype(np.int64), data


def text_bytes(text: pa.Array) -> int:
    """Bytes of text held by a binary or string array."""
    offsets, _ = byte_view(text)
    return int(offsets[-1] - offsets[0]) if len(offsets) else 0


def decimal_text_bytes(values: np.ndarray, max_digits: int) -> int:
    """Characters of all the integers' shortest decimal texts (minus signs included), |v| < 10**max_digits."""
    values = np.asarray(values)
    negative = int(np.count_nonzero(values < 0)) if values.dtype.kind == "i" else 0
    # |v| as unsigned: two's complement makes -(-2**63) read back as 2**63
    magnitude = np.abs(values).view(np.dtype(f"u{values.dtype.itemsize}")) if negative else values
    total = values.size + negative
    for k in range(1, max_digits):
        if 10**k > np.iinfo(magnitude.dtype).max:
            break
        total += int(np.count_nonzero(magnitude >= magnitude.dtype.type(10**k)))
    return total


def _month_tables() -> tuple[np.ndarray, np.ndarray]:
    months = np.arange(np.datetime64("1900-01", "M"), np.datetime64("2101-01", "M"))
    starts = months.astype("datetime64[D]")
    lengths = ((months + 1).astype("datetime64[D]") - starts).astype(np.int64)
    return starts.astype(np.int64), lengths


_MONTH_START, _MONTH_DAYS = _month_tables()
FIRST_YEAR, LAST_YEAR = 1900, 2100


def epoch_days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray | None:
    """Days since the epoch for years 1900-2100, months 1-12, days 1-31 (checked by the caller), by table
    look-up; None unless every date is a real one (the rule of `calendar_dates`)."""
    index = (year.astype(np.int32) - FIRST_YEAR) * 12 + month.astype(np.int32) - 1
    if (day > _MONTH_DAYS[index]).any():
        return None
    return _MONTH_START[index] + day - 1


_ZERO, _NINE = ord("0"), ord("9")


def _digits(byte: np.ndarray) -> np.ndarray:
    return (byte >= _ZERO) & (byte <= _NINE)


def fixed_clock_time(text: pa.Array) -> np.ndarray | None:
    """`HH:MM` (exactly 5 bytes) -> seconds after midnight; None unless every row is a valid time."""
    offsets, data = byte_view(text)
    n = len(text)
    if n == 0 or not (np.diff(offsets) == 5).all():
        return None if n else np.zeros(0, np.int64)
    b = data[offsets[0] : offsets[-1]].reshape(n, 5)
    if not (b[:, 2] == ord(":")).all() or not all(_digits(b[:, k]).all() for k in (0, 1, 3, 4)):
        return None
    hours = (b[:, 0] - _ZERO).astype(np.int16) * 10 + (b[:, 1] - _ZERO)
    minutes = (b[:, 3] - _ZERO).astype(np.int16) * 10 + (b[:, 4] - _ZERO)
    if hours.max() > 23 or minutes.max() > 59:
        return None
    return hours.astype(np.int64) * 3600 + minutes.astype(np.int64) * 60


def dollar_cents(text: pa.Array) -> pa.Array | None:
    """`$134.09`, `$-473.00` -> signed int64 cents by the rules of `amount_cents`, on raw bytes; None
    unless every row is such an amount."""
    offsets, data = byte_view(text)
    n = len(text)
    if n == 0:
        return pa.array(np.zeros(0, np.int64))
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts
    if lengths.min() < 5 or lengths.max() > 18:  # "$", 1-13 digits, ".", 2 digits, maybe a minus sign
        return None
    negative = data[starts + 1] == ord("-")
    ok = (data[starts] == ord("$")) & (data[ends - 3] == ord(".")) & (lengths <= 17 + negative)
    ok &= _digits(data[ends - 2]) & _digits(data[ends - 1]) & (lengths >= 5 + negative)
    if not ok.all():
        return None
    whole = pc.binary_slice(text, 1, -3)  # "-12" or "12": every byte after the sign must be a digit
    whole_offsets, whole_data = byte_view(whole)
    region = whole_data[whole_offsets[0] : whole_offsets[-1]]
    allowed = _digits(region)
    allowed[(whole_offsets[:-1] - whole_offsets[0])[negative]] = True  # the sign, first byte of its row
    if not allowed.all():
        return None
    dollars = pc.cast(whole.cast(pa.string()), pa.int64()).to_numpy()  # "-0" is 0: the sign is kept apart
    cents = (data[ends - 2] - _ZERO).astype(np.int64) * 10 + (data[ends - 1] - _ZERO)
    values = np.abs(dollars) * 100 + cents
    return pa.array(np.where(negative, -values, values))


def distinct_parsed(
    text: pa.Array, parse: Callable[[pa.Array], Parsed], dictionary: bool = False
) -> pa.Array | None:
    """`parse` applied once per distinct value of a binary column (decoded as UTF-8), spread back to the
    rows (`dictionary`: as a dictionary array of the parsed values, not spread); None unless every
    distinct value parses and none holds a quote or a line break (the reader's byte count of a segment
    relies on that)."""
    encoded = pc.dictionary_encode(text)
    distinct = encoded.dictionary.cast(pa.string())
    if pc.any(pc.match_substring_regex(distinct, '["\r\n]')).as_py():
        return None
    parsed = parse(distinct)
    if not pc.all(parsed.ok).as_py():
        return None
    if dictionary:
        return pa.DictionaryArray.from_arrays(encoded.indices, parsed.values)
    return parsed.values.take(encoded.indices)
