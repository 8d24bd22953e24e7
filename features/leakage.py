"""The point-in-time check of candidate features: cut the history at a moment, compute the features again,
and compare the rows before the cut. A point-in-time feature only reads events before its row, so
removing later events changes none of its values; a feature that reads the future (a window running
forward, a total over a card's whole history, later rows' labels) changes, and is reported.

The feature SQL is one SELECT over the lake tables (e.g. `SELECT txn_id, ts, sum(...) OVER (...) AS f
FROM transactions`) run through the caller's query function: a data scientist's goes through the
read-only analyst surface, so the check opens no engine of its own. The cut replaces `transactions` by its
rows before the moment (a CTE of the same name).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

Query = Callable[[str], pa.Table]
CUT_TABLE = "transactions"
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class LeakageFinding:
    """One feature checked: how many rows before the cut changed when the later history was removed."""

    feature: str
    rows_checked: int
    rows_changed: int
    examples: tuple[str, ...] = field(default=())  # keys of changed rows (transaction ids: tokens)

    @property
    def leaks(self) -> bool:
        return self.rows_changed > 0


@dataclass(frozen=True)
class LeakageReport:
    """Every feature checked at one cut."""

    cutoff: datetime
    findings: tuple[LeakageFinding, ...]

    @property
    def leaking(self) -> list[str]:
        """The features that read the future."""
        return [f.feature for f in self.findings if f.leaks]

    def summary(self) -> str:
        """One line: which features leak (or that none does), at which cut."""
        if not self.leaking:
            return f"point-in-time: no feature changed when the history after {self.cutoff} was removed"
        parts = [
            f"{f.feature} ({f.rows_changed:,} of {f.rows_checked:,} rows)" for f in self.findings if f.leaks
        ]
        return f"point-in-time: LEAK at {self.cutoff}: " + ", ".join(parts)


def _literal(moment: datetime) -> str:
    return f"TIMESTAMP '{moment.replace(tzinfo=None).isoformat(sep=' ', timespec='seconds')}'"


def default_cutoff(query: Query) -> datetime:
    """The median event time of the lake's transactions (half the history on each side of the cut)."""
    value = query(f"SELECT quantile_disc(ts, 0.5) AS cut FROM {CUT_TABLE}").to_pylist()[0]["cut"]
    if value is None:
        raise ValueError("the lake holds no transactions to check features on")
    return value


def _same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        x, y = float(a), float(b)  # type: ignore[arg-type]
        return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def check_point_in_time(
    query: Query,
    feature_sql: str,
    features: Sequence[str],
    *,
    cutoff: datetime | None = None,
    key: str = "txn_id",
) -> LeakageReport:
    """Compute `features` (columns of `feature_sql`'s result, keyed by `key`) on the whole history and on
    the history before `cutoff` (default: the median event time); report, per feature, the rows before the
    cut whose value changed."""
    cut = cutoff or default_cutoff(query)
    columns = ", ".join(f"f.{name}" for name in features)
    before = f"{CUT_TABLE} AS (SELECT * FROM {CUT_TABLE} WHERE ts < {_literal(cut)})"
    truncated = query(f"WITH {before} SELECT f.{key}, {columns} FROM ({feature_sql}) AS f").to_pylist()
    whole = query(
        f"SELECT f.{key}, {columns} FROM ({feature_sql}) AS f "
        f"WHERE f.{key} IN (SELECT {key} FROM {CUT_TABLE} WHERE ts < {_literal(cut)})"
    ).to_pylist()
    by_key = {row[key]: row for row in whole}
    findings = []
    for name in features:
        changed = [
            str(row[key])
            for row in truncated
            if row[key] in by_key and not _same(row[name], by_key[row[key]][name])
        ]
        findings.append(LeakageFinding(name, len(truncated), len(changed), tuple(changed[:MAX_EXAMPLES])))
    return LeakageReport(cut, tuple(findings))
