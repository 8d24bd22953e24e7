"""Streaming the text rows of an IBM file: header check, exact line numbers, malformed rows quarantined.

`stream_text_rows` yields batches of string columns with the 1-based file line of every row (header =
line 1). Rows with the wrong number of columns and empty lines never reach the caller: they go to the
quarantine with their line. `RowFailures` collects, per batch, the first failing field of each row.
"""

from __future__ import annotations

import codecs
import csv
import mmap
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from cdp.ibm.quarantine import Quarantine


class SourceFormatError(ValueError):
    """A source file is not in the expected IBM format (e.g. its header differs)."""


@dataclass
class TextRows:
    """One batch of rows as text: `columns[header]` is a string array; `lines[i]` is row i's file line."""

    columns: dict[str, pa.Array]
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.lines)


def _quote(value: str) -> str:
    return f'"{value}"' if "," in value else value


def row_text(columns: dict[str, pa.Array], index: int) -> str:
    """Rebuild a row's CSV text from its fields (exact for files in the IBM format)."""
    return ",".join(_quote(col[index].as_py()) for col in columns.values())


def check_header(path: Path, expected: Sequence[str], quote_found: bool) -> None:
    """Fail fast with SourceFormatError unless the file's first line is exactly `expected`.

    `quote_found` allows echoing the differing text; it is False for files holding personal data, where
    a missing header would put a customer's record in that place.
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            first = f.readline(1 << 16).rstrip("\r\n")
    except UnicodeDecodeError:
        raise SourceFormatError(f"{path.name} line 1: {_NOT_TEXT}") from None
    found = next(csv.reader([first]), [])
    if tuple(found) == tuple(expected):
        return
    message = f"{path.name} line 1: unexpected header; expected: {','.join(expected)}"
    for i, want in enumerate(expected):
        got = found[i] if i < len(found) else None
        if got != want:
            shown = "" if got is None else (f" but found {got!r}" if quote_found else " but found other text")
            message += f"; first difference at column {i + 1}: expected {want!r}{shown}"
            break
    else:
        message += f"; found {len(found) - len(expected)} extra column(s)"
    raise SourceFormatError(message)


_NOT_TEXT = "not UTF-8 text (a binary file, or another encoding?)"


def check_utf8(path: Path, segment: Segment | None = None) -> None:
    """Fail with SourceFormatError naming the file and line of the first bytes that are not UTF-8 text.

    The CSV parser cannot report such rows itself (it fails while decoding them, with no line), so the
    text path checks first; only the line is named, never the bytes."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pos = 0 if segment is None else segment.start
    end = None if segment is None else segment.end
    line = 1 if segment is None else segment.first_line
    with open(path, "rb") as f:
        f.seek(pos)
        while end is None or pos < end:
            chunk = f.read(16 << 20 if end is None else min(16 << 20, end - pos))
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                line += chunk.count(b"\n", 0, max(0, e.start))
                raise SourceFormatError(f"{path.name} line {line}: {_NOT_TEXT}") from None
            if not chunk:
                break
            line += chunk.count(b"\n")
            pos += len(chunk)


@dataclass(frozen=True)
class Segment:
    """A byte range of a CSV file that starts and ends on line boundaries, and the file line it starts at."""

    start: int
    end: int
    first_line: int


def iter_segments(path: Path, target_bytes: int) -> Iterator[Segment]:
    """Cut the data part of `path` (after the header) into ranges of about `target_bytes`, on line ends.

    Lazy: a range is yielded as soon as its first line is known, before the lines of its own bytes are
    counted, so the first ranges can be worked on while the rest of the file is still being read.
    The IBM files have no line breaks inside quoted values, which is what makes this cut safe.
    """
    counter = _NewlineCounter()
    with open(path, "rb") as f:
        header = f.readline()
        start, line = len(header), 2
        size = os.fstat(f.fileno()).st_size
        while start < size:
            f.seek(min(size, start + target_bytes))
            rest = f.readline() if start + target_bytes < size else b""
            end = min(size, start + target_bytes) + len(rest)
            yield Segment(start, end, line)
            start, line = end, line + counter.count(f, start, end)


def plan_segments(path: Path, target_bytes: int) -> list[Segment]:
    """All the ranges of `iter_segments`, each with its exact first file line."""
    return list(iter_segments(path, target_bytes))


class _NewlineCounter:
    """Counts line ends in a byte range of a file through one reused buffer (no per-range allocation)."""

    BLOCK = 1 << 20

    def __init__(self) -> None:
        self._block = np.empty(self.BLOCK, dtype=np.uint8)
        self._is_newline = np.empty(self.BLOCK, dtype=bool)

    def count(self, f: BinaryIO, start: int, end: int) -> int:
        f.seek(start)
        view = memoryview(self._block)
        lines = 0
        while start < end:
            got = f.readinto(view[: min(self.BLOCK, end - start)])
            if not got:
                raise OSError(f"file shorter than planned (byte {start})")
            np.equal(self._block[:got], 10, out=self._is_newline[:got])
            lines += int(np.count_nonzero(self._is_newline[:got]))
            start += got
        return lines


def count_line_ends(path: Path, start: int, end: int) -> int:
    """Line feeds in bytes `start`..`end` of a file."""
    with open(path, "rb") as f:
        return _NewlineCounter().count(f, start, end)


def _header_only(path: Path) -> bool:
    """True when the file's first line has no line end: the header is all there is."""
    with open(path, "rb") as f:
        return not f.readline().endswith((b"\n", b"\r"))


def _segment_reader(path: Path, segment: Segment) -> pa.BufferReader:
    with open(path, "rb") as f:
        header = f.readline()
        f.seek(segment.start)
        data = f.read(segment.end - segment.start)
    return pa.BufferReader(header + data)


class _LineTracker:
    """Gives accepted rows their file lines, knowing which lines the CSV parser rejected."""

    def __init__(self) -> None:
        self.next_line = 2  # line 1 is the header
        self.rejected: deque[int] = deque()

    def assign(self, n: int) -> np.ndarray:
        lines = np.empty(n, dtype=np.int64)
        filled, pos = 0, self.next_line
        while filled < n:
            if self.rejected and self.rejected[0] < pos + (n - filled):
                bad = self.rejected.popleft()
                run = bad - pos
                lines[filled : filled + run] = np.arange(pos, bad)
                filled, pos = filled + run, bad + 1
            else:
                lines[filled:] = np.arange(pos, pos + n - filled)
                pos += n - filled
                filled = n
        while self.rejected and self.rejected[0] == pos:  # rejected lines right after this batch
            self.rejected.popleft()
            pos += 1
        self.next_line = pos
        return lines


def stream_text_rows(
    path: Path,
    header: Sequence[str],
    quarantine: Quarantine,
    keep_raw: bool,
    block_size: int = 64 << 20,
    segment: Segment | None = None,
) -> Iterator[TextRows]:
    """Yield the rows of `path` as text columns with exact file lines; quarantine malformed rows.

    Checks the header first. `keep_raw` stores the text of rejected rows in the quarantine (only for
    files without personal data). With `segment`, only that byte range is read (lines stay file lines).
    """
    path = Path(path)
    check_header(path, header, quote_found=keep_raw)
    check_utf8(path, segment)
    if _header_only(path):
        return  # a header without a line end is the whole file: no rows (pyarrow cannot skip it)
    name = path.name
    stats = quarantine.stats_for(name)
    tracker = _LineTracker()
    expected = len(header)
    # Parser line numbers count from the start of what it reads (header = 1); shift them to file lines.
    shift = 0 if segment is None else segment.first_line - 2

    def on_invalid_row(row: pcsv.InvalidRow) -> str:
        quarantine.add(
            name,
            row.number + shift,
            None,
            f"expected {expected} columns, found {row.actual_columns}",
            row.text if keep_raw else None,
        )
        stats.add(0, 1)
        tracker.rejected.append(row.number)
        return "skip"

    reader = pcsv.open_csv(
        path if segment is None else _segment_reader(path, segment),
        read_options=pcsv.ReadOptions(
            skip_rows=1, column_names=list(header), block_size=block_size, use_threads=False
        ),
        # Quote-aware cutting: a line-break character inside a quoted value (a bare CR; the IBM files have
        # none) stays in its value instead of throwing the parser out of step with the block cutter.
        parse_options=pcsv.ParseOptions(
            invalid_row_handler=on_invalid_row, ignore_empty_lines=False, newlines_in_values=True
        ),
        convert_options=pcsv.ConvertOptions(
            column_types={h: pa.string() for h in header},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    for batch in reader:
        if batch.num_rows == 0:
            continue
        lines = tracker.assign(batch.num_rows) + shift
        columns = {h: batch.column(i) for i, h in enumerate(header)}
        empty = _all_empty(columns)
        if empty is not None:
            for line in lines[empty]:
                quarantine.add(name, int(line), None, "empty line", "" if keep_raw else None)
            stats.add(0, int(empty.sum()))
            keep = pa.array(~empty)
            columns = {h: pc.filter(col, keep) for h, col in columns.items()}
            lines = lines[~empty]
        if len(lines):
            yield TextRows(columns, lines)


def _all_empty(columns: dict[str, pa.Array]) -> np.ndarray | None:
    """Mask of rows whose every field is empty (blank lines), or None when there are none."""
    lengths = [pc.binary_length(col) for col in columns.values()]
    total = lengths[0]
    for length in lengths[1:]:
        total = pc.add(total, length)
    mask = pc.equal(total, 0).to_numpy(zero_copy_only=False)
    return mask if mask.any() else None


class RowFailures:
    """The first failing field of each row of a batch, in the order checks are made."""

    def __init__(self, n: int) -> None:
        self.failed = np.zeros(n, dtype=bool)
        self._found: list[tuple[np.ndarray, str, str, list[str] | None]] = []

    def check(
        self,
        field: str,
        ok: pa.Array | np.ndarray,
        reason: str,
        detail: Callable[[np.ndarray], list[str]] | None = None,
    ) -> None:
        """Record `reason` for rows where `ok` is false and no earlier check failed.

        `detail(indices)` may give a value-specific note per failing row; never pass one for a
        personal-data column.
        """
        good = ok if isinstance(ok, np.ndarray) else ok.to_numpy(zero_copy_only=False)
        new = ~good & ~self.failed
        if not new.any():
            return
        indices = np.flatnonzero(new)
        self.failed |= new
        self._found.append((indices, field, reason, detail(indices) if detail else None))

    def report(
        self, quarantine: Quarantine, file: str, lines: np.ndarray, raw: Callable[[int], str] | None
    ) -> int:
        """Send the failing rows to the quarantine in line order; return how many there were."""
        records = []
        for indices, field, reason, details in self._found:
            for k, i in enumerate(indices):
                records.append((int(i), field, reason, details[k] if details else None))
        records.sort()
        for i, field, reason, detail in records:
            quarantine.add(file, int(lines[i]), field, reason, raw(i) if raw else None, detail)
        return len(records)

    @property
    def accepted(self) -> pa.Array:
        return pa.array(~self.failed)


# ---- the typed fast path: a whole segment parsed at once, or not at all --------------------------


@dataclass(frozen=True)
class SegmentBytes:
    """The bytes of one segment (data lines only, no header), mapped from the file, not copied: the page
    cache's own pages, with no buffer to allocate and fill (the file must not shrink while they are used)."""

    data: pa.Buffer
    holds_cr: bool  # a CR byte is somewhere in the segment (found at memchr speed on the mapping)


def segment_bytes(path: Path, segment: Segment) -> SegmentBytes:
    size = segment.end - segment.start
    if size <= 0:
        return SegmentBytes(pa.py_buffer(b""), False)
    start = segment.start - segment.start % mmap.ALLOCATIONGRANULARITY
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < segment.end:
            raise OSError(f"{path.name}: file shorter than planned (byte {segment.end})")
        mapped = mmap.mmap(f.fileno(), segment.end - start, offset=start, access=mmap.ACCESS_READ)
    holds_cr = mapped.find(b"\r", segment.start - start) >= 0
    return SegmentBytes(pa.py_buffer(mapped).slice(segment.start - start, size), holds_cr)


# CSV blocks of the fast path: a few MB parse faster than one block of the whole segment (cache).
FAST_BLOCK_BYTES = 4 << 20


def _reject_row(row: pcsv.InvalidRow) -> str:
    return "error"


def _has_bare_cr(data: pa.Buffer) -> bool:
    """True when `data` holds a CR not followed by LF (a line break inside a value, or a bare CR line end):
    the text path, which cuts blocks quote-aware, decides what those rows are."""
    raw = np.frombuffer(data, dtype=np.uint8)
    cr = np.flatnonzero(raw == 13)
    if cr.size == 0:
        return False
    following = cr + 1
    return bool(following[-1] >= raw.size or (raw[following] != 10).any())


def typed_rows(
    data: pa.Buffer,
    header: Sequence[str],
    column_types: dict[str, pa.DataType],
    holds_cr: bool = True,
    **convert: object,
) -> pa.Table | None:
    """Parse header-less CSV `data` with typed columns in one go; None as soon as anything is irregular
    (a row with another number of columns, a value its column type does not take, a null in a typed
    column, a CR that does not end a CRLF line end). Binary columns come back as they are in the file,
    quotes removed."""
    if holds_cr and _has_bare_cr(data):
        return None
    try:
        with _undecodable_rows_fail_quietly():
            table = pcsv.read_csv(
                pa.BufferReader(data),
                read_options=pcsv.ReadOptions(
                    column_names=list(header), block_size=FAST_BLOCK_BYTES, use_threads=False
                ),
                parse_options=pcsv.ParseOptions(invalid_row_handler=_reject_row, ignore_empty_lines=False),
                convert_options=pcsv.ConvertOptions(
                    column_types=column_types,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                    **convert,
                ),
            )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if any(col.null_count for col in table.columns):
        return None
    return table.combine_chunks()


@contextmanager
def _undecodable_rows_fail_quietly() -> Iterator[None]:
    """pyarrow cannot decode a malformed row that is not UTF-8 to hand it to the row handler: it prints
    the decoding error through `sys.unraisablehook` (a traceback on stderr), then fails the read, which
    our caller handles (the text path then names the file and line). Keep that traceback off stderr."""
    previous = sys.unraisablehook

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if not isinstance(unraisable.exc_value, UnicodeDecodeError):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def structural_bytes(data: pa.Buffer, rows: int, columns: int) -> int | None:
    """Bytes of `data` that are no field's content if it holds exactly `rows` rows of `columns` fields,
    none of whose values holds a quote or a line break: separators, quote characters, line ends (CR
    included). None when the line feeds do not end exactly those rows."""
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0:
        return 0
    line_ends = rows - (0 if raw[-1] == ord("\n") else 1)
    quotes_and_returns = line_feeds = 0
    step = 1 << 20  # small pieces: the comparisons' temporaries stay in cache
    for start in range(0, raw.size, step):
        piece = raw[start : start + step]
        quotes_and_returns += int(np.count_nonzero(piece == ord('"')))
        quotes_and_returns += int(np.count_nonzero(piece == ord("\r")))
        line_feeds += int(np.count_nonzero(piece == ord("\n")))
    if line_feeds != line_ends:
        return None
    return rows * (columns - 1) + line_ends + quotes_and_returns
