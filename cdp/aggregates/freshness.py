"""`dash_freshness` kept month by month: rows, first and last event and last scoring time per source.

The figures of a source are those of its months combined (counts add up, first/last are a min/max), so
each month's figures are kept beside the aggregate tables with the fingerprint of the files they came
from (`s3://<lake bucket>/dashboards/_watermarks/dash_freshness.json`). A refresh recomputes the months
whose files changed - in-process from the rows the aggregates' refresh already read, or inside the engine
for a first build - and writes the small table again. A source not partitioned by month is counted whole
in the engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from cdp.aggregates.definitions import FRESHNESS, LAST_SCORED
from cdp.aggregates.incremental import ENGINE_MEMORY_LIMIT, IncrementalUnavailable, replace_table
from cdp.aggregates.watermarks import changed_months, sql_hash, watermark_uri
from cdp.objectstore.port import ObjectNotFoundError, ObjectStoreError

if TYPE_CHECKING:
    from cdp.aggregates.watermarks import Month, MonthListing
    from cdp.backends import Backends

FORMAT = 1
_TS = pa.timestamp("us")
FRESHNESS_SCHEMA = pa.schema(
    [
        ("table_name", pa.string()),
        ("row_count", pa.int64()),
        ("first_event", _TS),
        ("last_event", _TS),
        ("last_scored_at", _TS),
        ("refreshed_at", _TS),
    ]
)


@dataclass(frozen=True)
class Figures:
    """Rows, first and last event and last scoring time of some rows of a source."""

    rows: int = 0
    first: datetime | None = None
    last: datetime | None = None
    last_scored: datetime | None = None

    def plus(self, other: Figures) -> Figures:
        def pick(a: datetime | None, b: datetime | None, f: Callable) -> datetime | None:
            return a if b is None else b if a is None else f(a, b)

        return Figures(
            self.rows + other.rows,
            pick(self.first, other.first, min),
            pick(self.last, other.last, max),
            pick(self.last_scored, other.last_scored, max),
        )

    def to_json(self) -> list:
        return [
            self.rows,
            *(None if t is None else t.isoformat() for t in (self.first, self.last, self.last_scored)),
        ]

    @classmethod
    def from_json(cls, values: list) -> Figures:
        rows, *times = values
        return cls(int(rows), *(None if t is None else datetime.fromisoformat(t) for t in times))


def figures_sql(source: str, by_month: bool, where: str = "") -> str:
    """The figures of `source` (DuckDB SQL), per `year`/`month` partition when `by_month`."""
    keys = "year, month, " if by_month else ""
    return (
        f"SELECT {keys}CAST(count(*) AS BIGINT) AS row_count, min(ts) AS first_event, max(ts) AS last_event, "
        f"{LAST_SCORED[source]} AS last_scored_at FROM {source}"
        + (f" WHERE {where}" if where else "")
        + (" GROUP BY year, month" if by_month else "")
    )


def _figures(rows: pa.Table) -> dict[Month | None, Figures]:
    out = {}
    for r in rows.to_pylist():
        month = (int(r["year"]), int(r["month"])) if "year" in r else None
        out[month] = Figures(int(r["row_count"]), r["first_event"], r["last_event"], r["last_scored_at"])
    return out


def figures_in_process(source: str, rows: pa.Table) -> dict[Month, Figures]:
    """Per month, the figures of `rows` (a source's rows of some months, with `year` and `month`)."""
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{ENGINE_MEMORY_LIMIT}'")
        con.register(source, rows)
        return _figures(con.sql(figures_sql(source, by_month=True)).to_arrow_table())
    except duckdb.Error as e:
        raise IncrementalUnavailable(f"{FRESHNESS} of {source}: {str(e).splitlines()[0]}") from None
    finally:
        con.close()


class FreshnessState:
    """The kept figures per source and month, with the fingerprint of each month's files."""

    def __init__(self, backends: Backends) -> None:
        self.store = backends.object_store
        self.uri = watermark_uri(backends.settings.lake_bucket, FRESHNESS)
        self.digest = sql_hash("\n".join(figures_sql(s, True) for s in LAST_SCORED))
        self.sources: dict[str, dict[Month, tuple[str, Figures]]] = {}
        try:
            doc = json.loads(self.store.get_bytes(self.uri))
            if doc.get("format") == FORMAT and doc.get("sql_hash") == self.digest:
                self.sources = {
                    name: {
                        (int(k[:4]), int(k[5:7])): (v[0], Figures.from_json(v[1])) for k, v in months.items()
                    }
                    for name, months in doc["sources"].items()
                }
        except (ObjectNotFoundError, ObjectStoreError, OSError, ValueError, KeyError, TypeError, IndexError):
            self.sources = {}

    def save(self) -> None:
        doc = {
            "format": FORMAT,
            "sql_hash": self.digest,
            "sources": {
                name: {f"{y:04d}-{m:02d}": [fp, f.to_json()] for (y, m), (fp, f) in sorted(months.items())}
                for name, months in self.sources.items()
            },
        }
        self.store.put_bytes(self.uri, json.dumps(doc).encode())


def refresh_freshness(
    backends: Backends,
    present: set[str],
    listings: Callable[[str], MonthListing | None],
    rows_of: Callable[[str, set[Month]], pa.Table],
    refreshed_at: datetime,
    *,
    full: bool = False,
) -> int | None:
    """Write `dash_freshness` for the sources in `present` (None when there is none): a source's changed
    months from `rows_of` (in-process) when its kept figures are valid and the months small enough, from
    the engine otherwise. Returns the rows written."""
    sources = [s for s in LAST_SCORED if s in present]
    if not sources:
        return None
    settings = backends.settings
    state = FreshnessState(backends)
    incremental = settings.dashboard_incremental and not full
    totals: dict[str, Figures] = {}
    for source in sources:
        listing = listings(source)
        if listing is None:
            whole = _figures(backends.catalog.query(figures_sql(source, by_month=False)))
            totals[source] = whole.get(None, Figures())
            state.sources.pop(source, None)
            continue
        fingerprints = listing.fingerprints()
        kept = state.sources.get(source, {}) if incremental else {}
        months = changed_months({m: fp for m, (fp, _) in kept.items()}, fingerprints)
        fresh: dict[Month, Figures] | None = {} if not months else None
        if months and kept and listing.size(months) <= settings.dashboard_incremental_max_mb * 1_000_000:
            try:
                landed = months & fingerprints.keys()  # the others were deleted: no figures
                fresh = figures_in_process(source, rows_of(source, landed)) if landed else {}
            except (IncrementalUnavailable, ObjectStoreError, OSError, pa.ArrowException):
                fresh = None
        if fresh is None:  # every month again, inside the engine
            kept, months = {}, set(fingerprints)
            fresh = _figures(backends.catalog.query(figures_sql(source, by_month=True)))
        figures = {m: kept[m][1] for m in fingerprints if m in kept and m not in months}
        figures.update({m: fresh.get(m, Figures()) for m in months if m in fingerprints})
        state.sources[source] = {m: (fingerprints[m], f) for m, f in figures.items()}
        total = Figures()
        for f in figures.values():
            total = total.plus(f)
        totals[source] = total
    rows = pa.Table.from_pylist(
        [
            {"table_name": s, "row_count": t.rows, "first_event": t.first, "last_event": t.last,
             "last_scored_at": t.last_scored, "refreshed_at": refreshed_at}
            for s, t in totals.items()
        ],
        schema=FRESHNESS_SCHEMA,
    )  # fmt: skip
    written = replace_table(backends, FRESHNESS, rows)
    state.save()
    return written
