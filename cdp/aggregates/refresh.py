"""Rebuild the lake aggregate tables (`cdp.aggregates.definitions`) inside the catalog's engine.

`refresh_aggregates` rebuilds the tables of the groups asked whose source tables are registered, each with
`Catalog.create_table_as` (readers see the old table or the new one, never a mix; in AWS the table is
registered in Glue and computed by Athena). `refresh_quietly` is what the batch job, the stream landing and
the stream scoring call when they finish: a failure there is one log line and never fails the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from cdp.aggregates.definitions import AGGREGATES, FRESHNESS, freshness_sql
from cdp.aggregates.locations import aggregate_table
from cdp.aggregates.snapshots import QUARANTINE, refresh_quarantine
from cdp.catalog.port import CatalogError

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
    seconds: float = 0.0

    def merge(self, other: RefreshReport) -> RefreshReport:
        self.built.update(other.built)
        self.skipped.update(other.skipped)
        self.failed.update(other.failed)
        self.seconds += other.seconds
        return self

    def to_dict(self) -> dict[str, object]:
        return {"built": self.built, "skipped": self.skipped, "failed": self.failed, "seconds": self.seconds}


def _one_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:300]


def refresh_aggregates(backends: Backends, groups: Iterable[str] = GROUPS) -> RefreshReport:
    """Rebuild every aggregate of `groups` whose sources are registered, then `dash_freshness`. A table
    that fails is reported in `failed` and the others are still built."""
    started = time.perf_counter()
    wanted = set(groups)
    unknown = wanted - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown aggregate groups: {', '.join(sorted(unknown))}")
    catalog, bucket = backends.catalog, backends.settings.lake_bucket
    present = {t.name for t in catalog.tables()}
    report = RefreshReport()
    for aggregate in AGGREGATES:
        if aggregate.group not in wanted:
            continue
        missing = [s for s in aggregate.sources if s not in present]
        if missing:
            report.skipped[aggregate.name] = f"no {', '.join(missing)} table yet"
            continue
        try:
            report.built[aggregate.name] = catalog.create_table_as(
                aggregate_table(bucket, aggregate.name), aggregate.sql
            )
        except CatalogError as e:
            report.failed[aggregate.name] = _one_line(e)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0).isoformat(sep=" ")
    sql = freshness_sql(present, now)
    if sql is None:
        report.skipped[FRESHNESS] = "no source table yet"
    else:
        try:
            report.built[FRESHNESS] = catalog.create_table_as(aggregate_table(bucket, FRESHNESS), sql)
        except CatalogError as e:
            report.failed[FRESHNESS] = _one_line(e)
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
