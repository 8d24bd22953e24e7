"""Local adapter of the metrics port: one SQLite table of datapoints, aggregated per period in SQL.

An index on (namespace, name, dimensions, time) makes reading one series over a time range a single range
scan. WAL mode lets a publisher and an alarm evaluator share the file.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.metrics.port import (
    Datapoint,
    MetricDatum,
    MetricQuery,
    Statistic,
    as_utc,
    dimension_key,
    validate_data,
    validate_query,
)

if TYPE_CHECKING:
    from cdp.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS metric_data (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    dimensions TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    value REAL NOT NULL,
    unit TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_data_series ON metric_data (namespace, name, dimensions, ts_ms)
"""

_AGGREGATE = {
    Statistic.AVERAGE: "AVG(value)",
    Statistic.SUM: "SUM(value)",
    Statistic.MINIMUM: "MIN(value)",
    Statistic.MAXIMUM: "MAX(value)",
    Statistic.SAMPLE_COUNT: "COUNT(*)",
}


def _ms(moment: datetime) -> int:
    return int(as_utc(moment).timestamp() * 1000)


class SqliteMetricsStore:
    """Metric time series in a SQLite file (see the module docstring)."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            self._conn.execute(statement)

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteMetricsStore:
        """The platform's metrics store: `<state_dir>/metrics.sqlite`."""
        return cls(settings.state_dir / "metrics.sqlite")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def put_metric_data(self, data: list[MetricDatum]) -> None:
        validate_data(data)
        rows = [
            (
                datum.namespace,
                datum.name,
                dimension_key(datum.dimensions),
                _ms(datum.timestamp),
                float(datum.value),
                datum.unit,
            )
            for datum in data
        ]
        with self._lock, self._conn:  # one transaction per put
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "INSERT INTO metric_data (namespace, name, dimensions, ts_ms, value, unit)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )

    def get_statistics(self, query: MetricQuery, start: datetime, end: datetime) -> list[Datapoint]:
        validate_query(query, start, end)
        start_ms, end_ms, period_ms = _ms(start), _ms(end), query.period_seconds * 1000
        with self._lock:
            rows = self._conn.execute(
                f"SELECT (ts_ms - ?) / ? AS bucket, {_AGGREGATE[Statistic(query.statistic)]}"
                " FROM metric_data WHERE namespace = ? AND name = ? AND dimensions = ?"
                " AND ts_ms >= ? AND ts_ms < ? GROUP BY bucket ORDER BY bucket",
                (
                    start_ms,
                    period_ms,
                    query.namespace,
                    query.name,
                    dimension_key(query.dimensions),
                    start_ms,
                    end_ms,
                ),
            ).fetchall()
        origin = as_utc(start)
        return [
            Datapoint(origin + timedelta(milliseconds=bucket * period_ms), float(value))
            for bucket, value in rows
        ]
