"""PII leak scan: look for clear personal data in everything the platform wrote outside core banking.

Files are decoded before they are searched (Parquet values, SQLite rows, text), so compression cannot
hide a leak. It looks for
- card numbers: any stand-alone 15-16 digit run (not inside a longer word, e.g. hex) passing the Luhn check;
- known personal values (names, streets, e-mails of the customers), given by the caller;
- e-mail addresses (anything shaped like one);
- columns named like a CVV, card number or expiry.
Findings name the file and where in it, never the value itself (the report must not leak either).

Core banking may hold clear PII but never a CVV nor a clear PAN (PCI DSS): `scan_core_banking` checks its
SQLite store (every table, every column, plus the raw bytes of the file and its WAL) for CVV-like or
clear-PAN column names, for a card's source CVV stored as text in any row of that card, for Luhn-valid
card numbers in its values and for the source PANs in its bytes.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc  # noqa: F401 - pa.ipc
import pyarrow.parquet as pq

# 15-16 digits standing alone; not the fraction of a decimal number (0.1234567890123456 is a metric)
_DIGITS = re.compile(r"(?<![0-9A-Za-z])(?<!\d\.)\d{15,16}(?![0-9A-Za-z])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_FORBIDDEN_COLUMNS = re.compile(r"^(cvv|cvv2|card_?number|pan|expires|expiry|expiration)$", re.I)
_CVV_COLUMNS = re.compile(r"^(cvv\d?|cvc\d?|csc|cid|card_?verification\w*|security_?code)$", re.I)
_CLEAR_PAN_COLUMNS = re.compile(r"^(card_?number|pan|primary_account_number)$", re.I)
_SQLITE_SIDE_FILES = ("-wal", "-journal")
_TEXT_SUFFIXES = {
    ".json",
    ".jsonl",
    ".log",
    ".txt",
    ".csv",
    ".md",
    ".html",
    ".yaml",
    ".yml",
    ".eml",
    ".ndjson",
}


@dataclass(frozen=True)
class Finding:
    path: str
    where: str  # column / table / line
    kind: str  # card_number | known_value | email | forbidden_column | cvv


def luhn_valid(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class LeakScanner:
    """Scans files and folders for clear PII. `known_values` are exact strings to look for."""

    def __init__(self, known_values: Iterable[str] = (), min_length: int = 6) -> None:
        # Short values (a 3-digit CVV, a 4-letter name) would match random data: skip them here.
        self.known = sorted({v for v in known_values if v and len(v) >= min_length})
        self._known_re = re.compile("|".join(re.escape(v) for v in self.known)) if self.known else None

    def scan_text(self, text: str, path: str, where: str) -> Iterator[Finding]:
        for m in _DIGITS.finditer(text):
            if luhn_valid(m.group()):
                yield Finding(path, where, "card_number")
                break
        if _EMAIL.search(text):
            yield Finding(path, where, "email")
        if self._known_re is not None and self._known_re.search(text):
            yield Finding(path, where, "known_value")

    def scan_parquet(self, path: Path) -> Iterator[Finding]:
        yield from self.scan_table(pq.read_table(path), path)

    def scan_arrow(self, path: Path) -> Iterator[Finding]:
        """An Arrow IPC file (the batch job's staged chunks), decompressed and read column by column."""
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        yield from self.scan_table(table, path)

    def scan_table(self, table: pa.Table, path: Path) -> Iterator[Finding]:
        for name in table.column_names:
            if _FORBIDDEN_COLUMNS.match(name):
                yield Finding(str(path), name, "forbidden_column")
            text = "\n".join(str(v) for v in table[name].to_pylist() if v is not None)
            yield from self.scan_text(text, str(path), f"column {name}")

    def scan_sqlite(self, path: Path) -> Iterator[Finding]:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in names:
                cur = con.execute(f'SELECT * FROM "{table}"')
                cols = [d[0] for d in cur.description]
                for col in cols:
                    if _FORBIDDEN_COLUMNS.match(col):
                        yield Finding(str(path), f"{table}.{col}", "forbidden_column")
                chunks = []
                for row in cur:
                    for v in row:
                        if isinstance(v, bytes):
                            v = v.decode("utf-8", "replace")
                        if v is not None:
                            chunks.append(str(v))
                yield from self.scan_text("\n".join(chunks), str(path), f"table {table}")
        finally:
            con.close()

    def scan_file(self, path: Path) -> Iterator[Finding]:
        suffix = path.suffix.lower()
        head = path.open("rb").read(16)
        if suffix == ".parquet" or head.startswith(b"PAR1"):
            yield from self.scan_parquet(path)
        elif head.startswith(b"ARROW1"):
            yield from self.scan_arrow(path)
        elif head.startswith(b"SQLite format 3"):
            yield from self.scan_sqlite(path)
        elif suffix in _TEXT_SUFFIXES or not suffix:
            text = path.read_bytes().decode("utf-8", "replace")
            yield from self.scan_text(text, str(path), "text")

    def scan(self, roots: Iterable[Path]) -> list[Finding]:
        """Every finding under the given files or folders (SQLite WAL side files are read via the db)."""
        findings: list[Finding] = []
        for root in roots:
            root = Path(root)
            files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
            for f in files:
                if f.name.endswith(("-wal", "-shm", "-journal")):
                    continue
                findings.extend(self.scan_file(f))
        return findings


CardKey = tuple[int, int]  # (user, card index)


def scan_core_banking(
    path: Path, card_cvvs: Mapping[CardKey, str] | None = None, card_numbers: Iterable[str] = ()
) -> list[Finding]:
    """Where the core-banking SQLite store at `path` holds a CVV or a clear PAN.

    - `cvv`: a text value equal to the source CVV (`card_cvvs`, by user and card index) of the card its
      row belongs to (a row with `user` and `card_index` or `card` columns), whatever the column is called;
    - `forbidden_column`: a column named like a CVV or a clear PAN, in any table;
    - `card_number`: a Luhn-valid card number in any decoded value, or one of the source PANs
      (`card_numbers`) anywhere in the raw bytes of the file, its WAL or journal (free pages and old log
      frames included; a Luhn rule on raw bytes would flag the hex digits of transaction ids).
    """
    path, card_cvvs = Path(path), card_cvvs or {}
    findings: list[Finding] = []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            findings.extend(_scan_core_banking_table(con, path, table, card_cvvs))
    finally:
        con.close()
    pans = [p.encode("ascii") for p in set(card_numbers) if p]
    for file in [path, *(path.with_name(path.name + s) for s in _SQLITE_SIDE_FILES)]:
        if file.exists() and pans:
            raw = file.read_bytes()
            if any(p in raw for p in pans):
                findings.append(Finding(str(file), "raw bytes", "card_number"))
    return findings


def _scan_core_banking_table(
    con: sqlite3.Connection, path: Path, table: str, card_cvvs: Mapping[CardKey, str]
) -> Iterator[Finding]:
    cur = con.execute(f'SELECT * FROM "{table}"')
    cols = [d[0] for d in cur.description]
    for col in cols:
        if _CVV_COLUMNS.match(col) or _CLEAR_PAN_COLUMNS.match(col):
            yield Finding(str(path), f"{table}.{col}", "forbidden_column")
    card_col = "card_index" if "card_index" in cols else "card" if "card" in cols else None
    key_at = (cols.index("user"), cols.index(card_col)) if card_col and "user" in cols else None
    cvv_cols: set[str] = set()
    pan_found = False
    for row in cur:
        cvv = card_cvvs.get((row[key_at[0]], row[key_at[1]])) if key_at else None
        for col, v in zip(cols, row, strict=True):
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            if not isinstance(v, str):
                continue
            if cvv is not None and v == cvv:
                cvv_cols.add(col)
            if not pan_found and any(luhn_valid(m.group()) for m in _DIGITS.finditer(v)):
                pan_found = True
    for col in sorted(cvv_cols):
        yield Finding(str(path), f"{table}.{col}", "cvv")
    if pan_found:
        yield Finding(str(path), f"table {table}", "card_number")
