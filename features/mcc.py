"""Spending groups of merchant category codes, read from the data file `mcc_groups.csv`.

The file lists MCC ranges in priority order (first match wins), so specific codes come before the ISO
18245 range they sit in. The same table renders the SQL `CASE` expression and the online lookup.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MCC_GROUPS_FILE = Path(__file__).with_name("mcc_groups.csv")


@dataclass(frozen=True)
class MccRange:
    first: int
    last: int
    group: str


@lru_cache(maxsize=1)
def mcc_ranges() -> tuple[MccRange, ...]:
    """The ranges of `mcc_groups.csv`, in priority order."""
    with MCC_GROUPS_FILE.open(newline="") as f:
        return tuple(MccRange(int(r["first_mcc"]), int(r["last_mcc"]), r["group"]) for r in csv.DictReader(f))


@lru_cache(maxsize=1)
def group_names() -> tuple[str, ...]:
    """Every group, in first-appearance order of the file."""
    return tuple(dict.fromkeys(r.group for r in mcc_ranges()))


@lru_cache(maxsize=1)
def _lookup() -> tuple[str, ...]:
    table = []
    for code in range(10_000):
        table.append(next(r.group for r in mcc_ranges() if r.first <= code <= r.last))
    return tuple(table)


def mcc_group(mcc: int | None) -> str | None:
    """The spending group of a code (None for a missing code)."""
    if mcc is None:
        return None
    return _lookup()[mcc] if 0 <= mcc < 10_000 else "services"


def mcc_group_sql(column: str = "mcc") -> str:
    """A SQL `CASE` expression giving the spending group of `column`."""
    whens = []
    for r in mcc_ranges():
        cond = f"{column} = {r.first}" if r.first == r.last else f"{column} BETWEEN {r.first} AND {r.last}"
        whens.append(f"WHEN {cond} THEN '{r.group}'")
    return f"CASE WHEN {column} IS NULL THEN NULL " + " ".join(whens) + " ELSE 'services' END"
