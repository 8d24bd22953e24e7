"""Every dashboard table at once: the lake aggregates, model health and customers (the monitor's refresh,
and `cdp dashboard refresh`). Each part that fails is one log line and a reason in the summary; nothing
here raises but an interrupt."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cdp.aggregates.refresh import GROUPS, refresh_aggregates
from monitoring.snapshots.customers import NoCustomerModels, refresh_customers
from monitoring.snapshots.model_health import refresh_model_health

if TYPE_CHECKING:
    from cdp.backends import Backends

log = logging.getLogger("cdp.monitoring.snapshots")


def _one_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:300]


def refresh_dashboard_tables(backends: Backends, after: str, *, full: bool = False) -> dict[str, Any]:
    """Refresh every dashboard table (the lake aggregates month by month where they can be, from the
    whole lake with `full`); `after` names the caller for the log. Returns rows per table built, how each
    lake aggregate was refreshed and why any part was skipped or failed."""
    summary: dict[str, Any] = {"built": {}, "skipped": {}, "failed": {}, "modes": {}}
    try:
        report = refresh_aggregates(backends, GROUPS, full=full)
        summary["built"].update(report.built)
        summary["skipped"].update(report.skipped)
        summary["failed"].update(report.failed)
        summary["modes"].update(report.modes)
    except Exception as e:  # noqa: BLE001 - a failed refresh never fails its caller
        summary["failed"]["aggregates"] = _one_line(e)
    try:
        summary["built"].update(refresh_model_health(backends))
    except Exception as e:  # noqa: BLE001
        summary["failed"]["model health"] = _one_line(e)
    try:
        summary["built"].update(refresh_customers(backends))
    except NoCustomerModels as e:
        summary["skipped"]["customers"] = str(e)
    except Exception as e:  # noqa: BLE001
        summary["failed"]["customers"] = _one_line(e)
    for part, why in summary["failed"].items():
        log.warning("dashboard tables (%s) not refreshed after %s: %s", part, after, why)
    return summary


def refresh_after_monitor(backends: Backends) -> dict[str, Any] | None:
    """The monitor run's refresh (None when `CDP_DASHBOARD_REFRESH=false`)."""
    if not backends.settings.dashboard_refresh:
        return None
    return refresh_dashboard_tables(backends, after="the monitor run")
