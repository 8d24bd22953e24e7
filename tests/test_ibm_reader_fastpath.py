"""The typed fast path of the transactions reader against the reference text path.

Whenever the fast path accepts a segment, the text path must accept every row of it with the same values;
whatever the defects, reading a file gives the same accepted rows, quarantine records and statistics
with the fast path on or off.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdp.ibm.quarantine import Quarantine, read_quarantine
from cdp.ibm.reader import iter_transactions, plan_segments, read_valid_segment
from cdp.ibm.schema import TRANSACTIONS_HEADER, TRANSACTIONS_SCHEMA
from cdp.ibm.writer import TransactionsWriter
from tests.ibm_samples import KNOWN_CARDS, TRANSACTIONS_ROWS, csv_text, transactions_tables

PROPERTY = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Field values the text path rejects, or takes although they are not in their shortest form; by column.
DEFECTS: dict[int, tuple[str, ...]] = {
    0: ("x", "", "-1", "+0", "00", "2147483648", "NA", "0.0", '"0"', " 0"),  # User
    1: ("7", "-1", "128", "+1", "01", "001", "1e0", ""),  # Card (7: unknown card)
    2: ("1899", "2101", "02002", "+2002", "20O2", "2002.0", "null"),  # Year
    3: ("13", "0", "09", "009", "+9", "-9", "9 ", " 9", "0009"),  # Month
    4: ("32", "0", "01", "001", "31", "30", "29"),  # Day (30, 31, 29 make real and unreal dates)
    5: ("6:21", "24:00", "23:60", "06:2x", "06-21", "06:210", "", "0621 "),  # Time
    6: (
        "134.09",
        "$1x.00",
        "$1.2",
        "$1.234",
        "$-",
        "$.50",
        "$-.50",
        "$--1.00",
        "$+1.00",
        "$1,234.00",
        "$ 1.00",
        "$00012.30",
        "$-0.00",
        "$12345678901234.00",
        "$1234567890123.00",
        "$-1.-1",
        "$1-2.00",
        "$-1-2.00",
        "$12-.00",
    ),  # Amount
    7: ("Tap Transaction", "swipe transaction", "", "Swipe Transaction "),  # Use Chip
    8: ("9" * 19, "-" + "9" * 19, "-0", "+42", "0042", "4.2", "", "-9223372036854775808"),  # Merchant Name
    9: (
        "",
        "Zürich",
        "O'Hare",
        '"Washington, D.C."',
        '"O""Hare"',
        '"A""B""C"',
        '"La\rVerne"',
    ),  # Merchant City
    10: ("", "Italy", '"A, B"'),  # Merchant State
    11: ("9175O", "917500", "91750.00", "91750.", "2921", "02921", ".0", "91750.0"),  # Zip
    12: ("53O0", "10000", "-1", "05300", "+5300", "0"),  # MCC
    13: ("Bad Mood", '"Bad PIN,"', '"Bad PIN, Bad CVV"', "Bad PIN", '"Bad CVV,Bad PIN"'),  # Errors?
    14: ("yes", "YES", "true", "1", "", "No ", "Yes"),  # Is Fraud?
}
# (A line ended by a bare CR is left out: the whole-file text path and segments count lines differently
# there, with or without the fast path; `test_offsetting_defects_do_not_fool_the_byte_count` covers it.)
ROW_DEFECTS = ("too few columns", "too many columns", "empty line", "crlf")


def _row_with(base: str, column: int, value: str) -> str:
    fields = _split(base)
    fields[column] = value
    return ",".join(fields)


def _split(row: str) -> list[str]:
    """Split a sample row into its 15 field texts (quotes kept)."""
    out, field, quoted = [], "", False
    for ch in row:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            out.append(field)
            field = ""
        else:
            field += ch
    return [*out, field]


@st.composite
def defective_files(draw: st.DrawFn) -> tuple[bytes, int]:
    """A transactions file of sample rows with random field and row defects, and a segment size."""
    n = draw(st.integers(1, 60))
    lines = [TRANSACTIONS_ROWS[draw(st.integers(0, len(TRANSACTIONS_ROWS) - 1))] for _ in range(n)]
    ends = ["\n"] * n
    for i in draw(st.lists(st.integers(0, n - 1), max_size=6, unique=True)):
        if draw(st.booleans()):
            column = draw(st.sampled_from(sorted(DEFECTS)))
            lines[i] = _row_with(lines[i], column, draw(st.sampled_from(DEFECTS[column])))
        else:
            kind = draw(st.sampled_from(ROW_DEFECTS))
            fields = _split(lines[i])
            if kind == "too few columns":
                lines[i] = ",".join(fields[:-1])
            elif kind == "too many columns":
                lines[i] = ",".join([*fields, "x"])
            elif kind == "empty line":
                lines[i] = ""
            else:
                ends[i] = "\r\n"
    text = (
        ",".join(TRANSACTIONS_HEADER)
        + "\n"
        + "".join(f"{line}{end}" for line, end in zip(lines, ends, strict=True))
    )
    if draw(st.booleans()):
        text = text.rstrip("\n")  # no line end after the last row
    return text.encode(), draw(st.sampled_from([200, 700, 1 << 20]))


def _read(path: Path, folder: Path, chunk: int, fast: bool) -> tuple[pa.Table, list[tuple], dict]:
    q = Quarantine(folder)
    chunks = list(iter_transactions(path, q, KNOWN_CARDS, chunk_bytes=chunk, fast_path=fast))
    q.close()
    table = pa.concat_tables(chunks) if chunks else TRANSACTIONS_SCHEMA.empty_table()
    records = read_quarantine(folder).drop_columns(["quarantined_at"]).to_pylist()
    key = [(r["line"], r["field"] or "", r["reason"], r["raw"]) for r in records]
    return table, sorted(key), q.stats[path.name].to_dict()


def _fresh(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@PROPERTY
@given(case=defective_files())
def test_fast_and_text_paths_read_defective_files_alike(tmp_path, case: tuple[bytes, int]) -> None:
    data, chunk = case
    folder = _fresh(tmp_path, "defects")
    path = folder / "t.csv"
    path.write_bytes(data)
    fast = _read(path, folder / "q-fast", chunk, fast=True)
    text = _read(path, folder / "q-text", chunk, fast=False)
    assert fast[0].equals(text[0])
    assert fast[1] == text[1]
    assert fast[2] == text[2]


@PROPERTY
@given(case=defective_files())
def test_a_segment_the_fast_path_accepts_is_one_the_text_path_accepts_whole(tmp_path, case) -> None:
    data, chunk = case
    folder = _fresh(tmp_path, "segments")
    path = folder / "t.csv"
    path.write_bytes(data)
    for segment in plan_segments(path, chunk):
        fast = read_valid_segment(path, segment, KNOWN_CARDS)
        q = Quarantine(folder / "q")
        parts = list(iter_transactions(path, q, KNOWN_CARDS, segment=segment, fast_path=False))
        text = pa.concat_tables(parts) if parts else TRANSACTIONS_SCHEMA.empty_table()
        if fast is not None:
            assert q.total == 0
            assert fast.equals(text)


def test_clean_files_take_the_fast_path(tmp_path) -> None:
    """Guard for the two properties above: on clean data the fast path is really taken."""
    path = tmp_path / "t.csv"
    path.write_text(csv_text(TRANSACTIONS_HEADER, list(TRANSACTIONS_ROWS) * 50))
    segments = plan_segments(path, 2000)
    assert len(segments) > 3
    fast = [read_valid_segment(path, s, KNOWN_CARDS) for s in segments]
    assert all(t is not None for t in fast)
    whole = pa.concat_tables(fast)
    assert whole["line"].to_pylist() == list(range(2, 2 + 8 * 50))
    assert whole.equals(
        pa.concat_tables(
            list(iter_transactions(path, Quarantine(tmp_path / "q"), KNOWN_CARDS, fast_path=False))
        )
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=transactions_tables(min_size=1, max_size=40))
def test_written_tables_read_back_by_the_fast_path(tmp_path, table: pa.Table) -> None:
    folder = _fresh(tmp_path, "written")
    path = folder / "t.csv"
    with TransactionsWriter(path) as writer:
        writer.write(table)
    segments = plan_segments(path, 1 << 20)
    fast = read_valid_segment(path, segments[0], None)
    assert fast is not None
    assert fast.equals(table)


# A longer-than-shortest integer the text path refuses ("009" as a month), its extra bytes offset by
# characters the byte count would otherwise see twice: escaped quotes, a line ended by a bare CR.
OFFSET_DEFECTS = {
    "escaped quotes": '0,0,2002,009,1,06:21,$1.00,Swipe Transaction,1,"O""Ha""re",CA,91750.0,5300,,No\n',
    "bare cr": (
        "0,0,2002,9,1,06:21,$1.00,Swipe Transaction,1,La Verne,CA,91750.0,5300,,No\r"
        "0,0,2002,009,1,06:21,$1.00,Swipe Transaction,1,La Verne,CA,91750.0,5300,,No\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(OFFSET_DEFECTS))
def test_offsetting_defects_do_not_fool_the_byte_count(tmp_path, kind: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(",".join(TRANSACTIONS_HEADER) + "\n" + OFFSET_DEFECTS[kind])
    assert read_valid_segment(path, plan_segments(path, 1 << 20)[0], KNOWN_CARDS) is None
    q = Quarantine(tmp_path / "q")
    list(iter_transactions(path, q, KNOWN_CARDS))
    assert q.by_reason["Month: not a month"] == 1


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("chunk", [200, 1 << 20])
def test_a_file_that_is_only_a_header_without_a_line_end_has_no_rows(
    tmp_path, fast: bool, chunk: int
) -> None:
    """Found by the property test above: every row an empty line, the last line end dropped, left a header
    with no line end, which the text path's CSV parser refused ("could not skip initial 1 rows")."""
    path = tmp_path / "t.csv"
    path.write_bytes(",".join(TRANSACTIONS_HEADER).encode())
    table, quarantined, stats = _read(path, tmp_path / "q", chunk, fast=fast)
    assert table.num_rows == 0 and quarantined == []
    assert stats["rows_read"] == 0
