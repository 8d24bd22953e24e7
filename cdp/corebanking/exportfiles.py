"""The access-request export files under `<home>/exports/`: named after the customer token, short-lived.

An export holds a customer's data in clear, so it is not kept: files older than `export_ttl_days` are
removed at the start of every export and by the retention purge, and every export of a customer is
removed when that customer is erased.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cdp.settings import Settings

SUFFIX = ".json"


def exports_dir(settings: Settings) -> Path:
    """Where export files are written."""
    return settings.home / "exports"


def export_path(settings: Settings, customer_token: str) -> Path:
    """The export file of one customer."""
    return exports_dir(settings) / f"{customer_token}{SUFFIX}"


def remove_expired(settings: Settings, now: datetime | None = None) -> int:
    """Delete export files last written more than `export_ttl_days` before `now`; returns how many."""
    folder = exports_dir(settings)
    if not folder.is_dir():
        return 0
    limit = (now or datetime.now(UTC)) - timedelta(days=settings.export_ttl_days)
    removed = 0
    for path in folder.glob(f"*{SUFFIX}"):
        if datetime.fromtimestamp(path.stat().st_mtime, UTC) < limit:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def remove_customer_exports(settings: Settings, customer_token: str) -> int:
    """Delete every export file of one customer (at erasure); returns how many."""
    path = export_path(settings, customer_token)
    if not path.exists():
        return 0
    path.unlink(missing_ok=True)
    return 1
