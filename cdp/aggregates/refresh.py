"""Refresh the lake aggregate tables (`cdp.aggregates.definitions`).

`refresh_aggregates` refreshes the tables of the groups asked whose source tables are registered. A table
whose watermark (`cdp.aggregates.watermarks`) says which source months it was built from is refreshed
month by month: only the months whose files changed are recomputed and merged
(`cdp.aggregates.incremental`), and nothing is done when none changed. Without a valid watermark (first
build, changed SQL, a source not partitioned by month, too many changed bytes, `full=True`) the table is
rebuilt in full with `Catalog.create_table_as` inside the catalog's engine (in AWS registered in Glue and
computed by Athena). Either way readers see the old table or the new one, never a mix.

`refresh_quietly` is what the batch job, the stream landing and the stream scoring call when they finish:
a failure there is one log line and never fails the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from cdp.aggregates.definitions import AGGREGATES, FRESHNESS, SOURCE_COLUMNS, Aggregate
from cdp.aggregates.freshness import refresh_freshness
from cdp.aggregates.incremental import (
    IncrementalUnavailable,
    merged_rows,
    read_months,
    read_table,
    replace_table,
)
from cdp.aggregates.locations import aggregate_table
from cdp.aggregates.snapshots import QUARANTINE, refresh_quarantine
from cdp.aggregates.watermarks import (
    MONTH_KEYS,
    MonthListing,
    Watermark,
    changed_months,
    forget_watermark,
    list_months,
    load_watermark,
    save_watermark,
    sql_hash,
)
from cdp.catalog.port import CatalogError, TableInfo
from cdp.objectstore.port import ObjectStoreError

if TYPE_CHECKING:
    from cdp.backends import Backends

log = logging.getLogger("cdp.aggregates")

GROUPS = ("fraud", "stream")


@dataclass
class RefreshReport:
    """What one refresh did: rows per table built, why a table was skipped or failed."""

    built: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    # how each lake aggregate was refreshed: "full", "<n> months" or "unchanged" (then not in `built`)
    modes: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def merge(self, other: RefreshReport) -> RefreshReport:
        self.built.update(other.built)
        self.skipped.update(other.skipped)
        self.failed.update(other.failed)
        self.modes.update(other.modes)
        self.seconds += other.seconds
        return self

    def to_dict(self) -> dict[str, object]:
        return {
            "built": self.built,
            "skipped": self.skipped,
            "failed": self.failed,
            "modes": self.modes,
            "seconds": self.seconds,
        }


def _one_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:300]


class _Sources:
    """The month listings of the source tables and the rows read for a set of months, each taken once
    per refresh and shared by the aggregates of one source."""

    def __init__(self, backends: Backends, registered: dict[str, TableInfo]) -> None:
        self.backends = backends
        self.registered = registered
        self._listings: dict[str, MonthListing | None] = {}
        self._rows: dict[tuple[str, frozenset], pa.Table] = {}

    def listing(self, name: str) -> MonthListing | None:
        if name not in self._listings:
            table = self.registered[name]
            monthly = tuple(table.partition_keys) == MONTH_KEYS
            self._listings[name] = (
                list_months(self.backends.object_store, table.location) if monthly else None
            )
        return self._listings[name]

    def rows(self, name: str, months: set) -> pa.Table:
        key = (name, frozenset(months))
        if key not in self._rows:
            listing = self.listing(name)
            assert listing is not None
            self._rows[key] = read_months(
                self.backends.object_store, listing, months, self.registered[name], SOURCE_COLUMNS[name]
            )
        return self._rows[key]


def _refresh_one(
    backends: Backends, aggregate: Aggregate, sources: _Sources, full: bool
) -> tuple[int | None, str]:
    """Refresh one aggregate: month by month when its watermark allows, else in full. Returns the rows
    written (None when unchanged) and the mode."""
    settings, store = backends.settings, backends.object_store
    bucket = settings.lake_bucket
    digest = sql_hash(aggregate.sql)
    source = aggregate.sources[0] if len(aggregate.sources) == 1 else None
    listing = sources.listing(source) if source is not None else None
    fingerprints = listing.fingerprints() if listing is not None else None
    watermark = None
    if not full and settings.dashboard_incremental and fingerprints is not None:
        watermark = load_watermark(store, bucket, aggregate.name)
    if watermark is not None and watermark.sql_hash == digest and aggregate.name in sources.registered:
        months = changed_months(watermark.months, fingerprints)
        if not months:
            return None, "unchanged"
        if listing.size(months) <= settings.dashboard_incremental_max_mb * 1_000_000:
            try:
                rows = merged_rows(
                    aggregate, read_table(backends, aggregate.name), sources.rows(source, months), months
                )
                written = replace_table(backends, aggregate.name, rows)
                save_watermark(store, bucket, aggregate.name, Watermark(digest, fingerprints))
                return written, f"{len(months)} months"
            except (IncrementalUnavailable, ObjectStoreError, OSError, pa.ArrowException) as e:
                log.info("dashboard aggregate %s rebuilt in full: %s", aggregate.name, _one_line(e))
    forget_watermark(store, bucket, aggregate.name)  # a failed rebuild must not leave a stale one
    written = backends.catalog.create_table_as(aggregate_table(bucket, aggregate.name), aggregate.sql)
    if fingerprints is not None:
        save_watermark(store, bucket, aggregate.name, Watermark(digest, fingerprints))
    return written, "full"


def refresh_aggregates(
    backends: Backends, groups: Iterable[str] = GROUPS, *, full: bool = False
) -> RefreshReport:
    """Refresh every aggregate of `groups` whose sources are registered (month by month where a watermark
    allows, in full otherwise or with `full`), then `dash_freshness` and `dash_quarantine`. A table that
    fails is reported in `failed` and the others are still built."""
    started = time.perf_counter()
    wanted = set(groups)
    unknown = wanted - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown aggregate groups: {', '.join(sorted(unknown))}")
    registered = {t.name: t for t in backends.catalog.tables()}
    present = set(registered)
    sources = _Sources(backends, registered)
    report = RefreshReport()
    for aggregate in AGGREGATES:
        if aggregate.group not in wanted:
            continue
        missing = [s for s in aggregate.sources if s not in present]
        if missing:
            report.skipped[aggregate.name] = f"no {', '.join(missing)} table yet"
            continue
        try:
            written, report.modes[aggregate.name] = _refresh_one(backends, aggregate, sources, full)
        except (CatalogError, ObjectStoreError, OSError) as e:
            report.failed[aggregate.name] = _one_line(e)
            continue
        if written is not None:
            report.built[aggregate.name] = written
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    try:
        written = refresh_freshness(backends, present, sources.listing, sources.rows, now, full=full)
    except (CatalogError, ObjectStoreError, OSError, pa.ArrowException) as e:
        report.failed[FRESHNESS] = _one_line(e)
    else:
        if written is None:
            report.skipped[FRESHNESS] = "no source table yet"
        else:
            report.built[FRESHNESS] = written
    try:
        report.built[QUARANTINE] = refresh_quarantine(backends)
    except (CatalogError, OSError, pa.ArrowException) as e:
        report.failed[QUARANTINE] = _one_line(e)
    report.seconds = time.perf_counter() - started
    return report


def refresh_quietly(backends: Backends, groups: Iterable[str], after: str) -> RefreshReport | None:
    """`refresh_aggregates` for a job that just finished (`after` names it): never raises (but for an
    interrupt), logs one line per failure; None when refreshes are switched off
    (`CDP_DASHBOARD_REFRESH=false`) or the refresh itself failed."""
    if not backends.settings.dashboard_refresh:
        return None
    try:
        report = refresh_aggregates(backends, groups)
    except Exception as e:  # noqa: BLE001 - a failed refresh must never fail the job that called it
        log.warning("dashboard aggregates not refreshed after %s: %s", after, _one_line(e))
        return None
    for name, why in report.failed.items():
        log.warning("dashboard aggregate %s not refreshed after %s: %s", name, after, why)
    return report
