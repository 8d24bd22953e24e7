"""k-anonymity of the lake's customers table: the quasi-identifiers, their bands, and the generaliser.

Every column of the protected customers table other than the token and the ciphertexts is a
quasi-identifier: alone it names nobody, together (age, sex, town, income, score, ...) they can single one
customer out. Each is declared once below with a generalisation ladder: level 0 is the fixed coarsening
every record gets (5-year birth bands, zip3, 0.1-degree coordinates, 10k income and debt bands, FICO bands
of 50, ...); higher levels are wider bands or coarser places; the last level is null.

`k_anonymise` works on a whole table (full-domain generalisation: one level per attribute for every row):
1. from all attributes at level 0, it raises one attribute a level at a time until at most
   `max_suppressed_share` of the customers are in classes smaller than k: the step that takes the most
   customers out of small classes per unit of loss (each attribute's `weight`: what the platform loses by
   it); when no step helps, the cheapest (ties: the first in `GENERALISATIONS`);
2. it then lowers again, most useful attribute first, every level not needed for that (a minimal result);
3. the remaining customers in small classes are suppressed: all their quasi-identifiers become null (and,
   if fewer than k, a few more from the largest class, so the all-null class has k members too).
The result is checked before it is returned: every class over all quasi-identifier columns (null a value
like any other) has at least k customers, unless the table has fewer than k customers at all (then every
quasi-identifier is null). Deterministic: the same table gives the same result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.security import coarsen
from cdp.security.coarsen import ArrowValues, Bands

MAX_SUPPRESSED_SHARE = 0.01  # customers whose quasi-identifiers may all be nulled instead of generalising
# What one level given up costs the platform: attributes no model reads, model inputs, age (CLV, segments).
UNUSED, MODEL_INPUT, AGE = 1, 4, 8


class Generalisation(Protocol):
    """One quasi-identifier: its fixed coarsening (level 0) and wider levels up to null (the last)."""

    name: str
    weight: int  # what the platform loses per level given up

    @property
    def columns(self) -> tuple[str, ...]:
        """The protected table's columns this attribute fills."""
        ...

    @property
    def levels(self) -> int:
        """Number of levels, the last being null."""
        ...

    def record(self, users: pa.Table) -> dict[str, ArrowValues]:
        """Level-0 columns from a users table in the source schema."""
        ...

    def generalise(self, protected: pa.Table, level: int) -> dict[str, ArrowValues]:
        """The columns at `level`, from a protected table at level 0."""
        ...


def _nulls(like: ArrowValues) -> pa.Array:
    return pa.nulls(len(like), like.type)


@dataclass(frozen=True)
class Kept:
    """A category kept as it is (or as `coarsen` cuts it) or given up (null)."""

    name: str
    source: str | None = None  # source column, when not `name`
    cut: str | None = None  # "zip3": the first three digits
    weight: int = UNUSED

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def levels(self) -> int:
        return 2

    def record(self, users: pa.Table) -> dict[str, ArrowValues]:
        values = users[self.source or self.name]
        return {self.name: coarsen.zip3(values) if self.cut == "zip3" else values}

    def generalise(self, protected: pa.Table, level: int) -> dict[str, ArrowValues]:
        values = protected[self.name]
        return {self.name: values if level == 0 else _nulls(values)}


@dataclass(frozen=True)
class Coordinate:
    """Latitude or longitude: 1 decimal, then multiples of each of `steps` degrees (each a multiple of
    the one before), then null."""

    name: str
    steps: tuple[int, ...] = (1, 5)
    weight: int = UNUSED

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def levels(self) -> int:
        return len(self.steps) + 2

    def record(self, users: pa.Table) -> dict[str, ArrowValues]:
        return {self.name: coarsen.round_coordinate(users[self.name])}

    def generalise(self, protected: pa.Table, level: int) -> dict[str, ArrowValues]:
        values = protected[self.name]
        if level > len(self.steps):
            return {self.name: _nulls(values)}
        for step in self.steps[:level]:  # snapped step by step: a cell of each level holds whole cells below
            values = coarsen.snap_coordinate(values, step)
        return {self.name: values}


@dataclass(frozen=True)
class BirthYears:
    """Birth year as "<start>-<end>" bands of each of `widths` years (each a multiple of the one before)."""

    name: str
    source: str
    widths: tuple[int, ...]
    weight: int = UNUSED

    def __post_init__(self) -> None:
        if any(wider % width for width, wider in zip(self.widths, self.widths[1:], strict=False)):
            raise ValueError(f"{self.name}: each band width must be a multiple of the one before")

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.name,)

    @property
    def levels(self) -> int:
        return len(self.widths) + 1

    def record(self, users: pa.Table) -> dict[str, ArrowValues]:
        return {self.name: coarsen.birth_year_band(users[self.source], self.widths[0])}

    def generalise(self, protected: pa.Table, level: int) -> dict[str, ArrowValues]:
        values = protected[self.name]
        if level == 0:
            return {self.name: values}
        if level < len(self.widths):
            return {self.name: coarsen.widen_birth_year_band(values, self.widths[level])}
        return {self.name: _nulls(values)}


@dataclass(frozen=True)
class Banded:
    """A number kept as its band's lower bound in `name` plus the band's label in `<name>_band`, the
    bands of each level given by `ladder` (each width a multiple of the one before, same open top)."""

    name: str
    ladder: tuple[Bands, ...]
    weight: int = UNUSED

    def __post_init__(self) -> None:
        for finer, coarser in zip(self.ladder, self.ladder[1:], strict=False):
            if coarser.width % finer.width or coarser.top != finer.top:
                raise ValueError(f"{self.name}: a band of {coarser} must hold whole bands of {finer}")

    @property
    def label(self) -> str:
        return f"{self.name}_band"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.name, self.label)

    @property
    def levels(self) -> int:
        return len(self.ladder) + 1

    def _banded(self, values: ArrowValues, bands: Bands) -> dict[str, ArrowValues]:
        lower = bands.lower_bound(values)
        return {self.name: lower, self.label: bands.label(lower)}

    def record(self, users: pa.Table) -> dict[str, ArrowValues]:
        return self._banded(users[self.name], self.ladder[0])

    def generalise(self, protected: pa.Table, level: int) -> dict[str, ArrowValues]:
        if level == 0:
            return {c: protected[c] for c in self.columns}
        if level < len(self.ladder):
            return self._banded(protected[self.name], self.ladder[level])
        return {c: _nulls(protected[c]) for c in self.columns}


def _ladder(widths: Sequence[int], top: int | None) -> tuple[Bands, ...]:
    return tuple(Bands(w, top) for w in widths)


MONEY_BANDS = _ladder((10_000, 20_000, 40_000), top=200_000)  # dollars a year / of debt
FICO_BANDS = _ladder((50, 100, 200), top=800)  # lenders read FICO in bands of 50; 800-850 is one band
CARD_COUNT_BANDS = _ladder((1, 2, 4), top=8)
RETIREMENT_AGE_BANDS = _ladder((1, 5), top=75)
BIRTH_YEAR_WIDTHS = (5, 10, 20)

# The quasi-identifiers, least useful first (a tie between steps goes to the first): what no model of the
# platform reads (places, area income, debt, retirement age, sex), then the profile attributes the CLV
# model reads, then age (CLV, segments and their names). Steps are undone in the reverse order.
GENERALISATIONS: tuple[Generalisation, ...] = (
    Kept("city"),
    Kept("zip3", source="zipcode", cut="zip3"),
    Coordinate("latitude"),
    Coordinate("longitude"),
    Banded("per_capita_income", MONEY_BANDS),
    Banded("total_debt", MONEY_BANDS),
    Banded("retirement_age", RETIREMENT_AGE_BANDS),
    Kept("state"),
    Kept("gender"),
    Banded("num_credit_cards", CARD_COUNT_BANDS, weight=MODEL_INPUT),
    Banded("fico_score", FICO_BANDS, weight=MODEL_INPUT),
    Banded("yearly_income", MONEY_BANDS, weight=MODEL_INPUT),
    BirthYears("birth_year_band", source="birth_year", widths=BIRTH_YEAR_WIDTHS, weight=AGE),
)
QUASI_IDENTIFIERS: tuple[str, ...] = tuple(g.name for g in GENERALISATIONS)
QUASI_IDENTIFIER_COLUMNS: tuple[str, ...] = tuple(c for g in GENERALISATIONS for c in g.columns)


def record_level(users: pa.Table) -> dict[str, ArrowValues]:
    """Every quasi-identifier column at its fixed coarsening (level 0), from a source users table."""
    out: dict[str, ArrowValues] = {}
    for g in GENERALISATIONS:
        out.update(g.record(users))
    return out


@dataclass(frozen=True)
class Anonymised:
    """A k-anonymous table and how it was reached."""

    table: pa.Table
    k: int
    levels: Mapping[str, int]  # per quasi-identifier: 0 = the fixed bands, the last level = null
    suppressed: int  # customers whose quasi-identifiers were all nulled
    smallest_class: int  # customers in the smallest equivalence class (the table's size when < k)


def k_anonymise(table: pa.Table, k: int, max_suppressed_share: float = MAX_SUPPRESSED_SHARE) -> Anonymised:
    """`table` (quasi-identifiers at level 0) generalised and suppressed until it is k-anonymous."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if not 0 <= max_suppressed_share < 1:
        raise ValueError("max_suppressed_share must be in [0, 1)")
    n = table.num_rows
    codes = {
        g.name: [_codes(g.generalise(table, level)[g.name]) for level in range(g.levels)]
        for g in GENERALISATIONS
    }
    tops = {g.name: g.levels - 1 for g in GENERALISATIONS}
    weights = {g.name: g.weight for g in GENERALISATIONS}
    budget = int(max_suppressed_share * n)

    def outliers(levels: Mapping[str, int]) -> int:
        _, counts = _classes([codes[a][lv] for a, lv in levels.items() if lv < tops[a]], n)
        return int(counts[counts < k].sum())

    levels = _least_generalisation(outliers, budget, tops, weights)
    ids, counts = _classes([codes[a][lv] for a, lv in levels.items() if lv < tops[a]], n)
    suppress = _rows_to_suppress(ids, counts, k)
    columns = {c: table[c] for c in table.column_names}
    mask = pa.array(suppress)
    for g in GENERALISATIONS:
        for name, values in g.generalise(table, levels[g.name]).items():
            columns[name] = pc.if_else(mask, pa.scalar(None, values.type), values)
    out = pa.Table.from_arrays([pc.cast(columns[f.name], f.type) for f in table.schema], schema=table.schema)
    smallest = smallest_class(out)
    if n >= k and smallest < k:
        raise RuntimeError(f"customers table not {k}-anonymous after generalisation (class of {smallest})")
    return Anonymised(out, k, levels, int(suppress.sum()), smallest)


def _least_generalisation(
    outliers: Callable[[Mapping[str, int]], int],
    budget: int,
    tops: Mapping[str, int],
    weights: Mapping[str, int],
) -> dict[str, int]:
    """Levels (steps 1 and 2 of the module's description) leaving at most `budget` customers in small
    classes, or every attribute at its top level when nothing less does."""
    levels = dict.fromkeys(QUASI_IDENTIFIERS, 0)
    now = outliers(levels)
    while now > budget:
        steps = [a for a in QUASI_IDENTIFIERS if levels[a] < tops[a]]
        if not steps:
            break  # every quasi-identifier null: one class of every customer (fewer than k of them)
        after = {a: outliers({**levels, a: levels[a] + 1}) for a in steps}
        # most customers out of small classes per unit of loss, then the cheaper; max keeps the first
        best = max(steps, key=lambda a: ((now - after[a]) / weights[a], -weights[a]))
        levels[best] += 1
        now = after[best]
    for a in reversed(QUASI_IDENTIFIERS):
        while levels[a] > 0 and outliers({**levels, a: levels[a] - 1}) <= budget:
            levels[a] -= 1
    return levels


def keep_k_anonymous(table: pa.Table, k: int) -> tuple[pa.Table, int]:
    """A generalised table that lost rows (an erasure) made k-anonymous again without widening anything:
    the quasi-identifiers of rows left in classes smaller than k are nulled (with more rows from the
    largest class when too few to form a class of k). Returns the table and how many rows were nulled."""
    n = table.num_rows
    if n == 0 or smallest_class(table) >= k:
        return table, 0
    ids, counts = _classes([_codes(table[c]) for c in QUASI_IDENTIFIER_COLUMNS], n)
    mask = pa.array(_rows_to_suppress(ids, counts, k))
    columns = {
        c: (pc.if_else(mask, pa.scalar(None, table[c].type), table[c]) if c in QUASI_IDENTIFIER_COLUMNS
            else table[c])
        for c in table.column_names
    }  # fmt: skip
    return pa.table(columns, schema=table.schema), int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def smallest_class(table: pa.Table, columns: Sequence[str] = QUASI_IDENTIFIER_COLUMNS) -> int:
    """Rows in the smallest group of rows equal on all `columns` (null equal to null); 0 when empty."""
    if table.num_rows == 0:
        return 0
    _, counts = _classes([_codes(table[c]) for c in columns], table.num_rows)
    return int(counts.min())


def _codes(values: ArrowValues) -> np.ndarray:
    """Dense integer codes of a column's values, null a value of its own."""
    array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    encoded = pc.dictionary_encode(array, null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _classes(codes: Sequence[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Equivalence class of each row over the code columns, and each class's size."""
    key = np.zeros(n, np.int64)
    for column in codes:
        radix = int(column.max()) + 1 if n else 1
        if int(key.max(initial=0)) >= (1 << 62) // radix:
            key = np.unique(key, return_inverse=True)[1].astype(np.int64)
        key = key * radix + column
    _, ids, counts = np.unique(key, return_inverse=True, return_counts=True)
    return ids, counts


def _rows_to_suppress(ids: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    """Rows of classes smaller than k; if fewer than k rows, the missing ones from the largest class
    (its last rows; it keeps k or more), else whole next-smallest classes too."""
    small = counts < k
    rows = small[ids]
    missing = k - int(counts[small].sum())
    if missing <= 0 or missing == k:
        return rows
    largest = int(np.argmax(counts))
    if counts[largest] - missing >= k:
        rows[np.flatnonzero(ids == largest)[-missing:]] = True
        return rows
    first_row = np.full(len(counts), len(ids), np.int64)
    np.minimum.at(first_row, ids, np.arange(len(ids)))
    for c in sorted(np.flatnonzero(~small), key=lambda c: (counts[c], first_row[c])):
        small[c] = True
        if int(counts[small].sum()) >= k:
            break
    return small[ids]
