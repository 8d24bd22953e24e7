"""The metrics port: publish data points to a named time series and read per-period statistics back.

CloudWatch semantics that both adapters honour:
- a metric is identified by namespace, name and its full set of dimensions (name -> value);
- `get_statistics` splits [start, end) into periods of `period_seconds` aligned on `start` and returns one
  datapoint per period that holds data, in time order; periods without data are absent (not zero);
- values must be finite numbers; a put takes at most `MAX_DATUMS_PER_PUT` datapoints and a datum at most
  `MAX_DIMENSIONS` dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

MAX_DATUMS_PER_PUT = 1000
MAX_DIMENSIONS = 30


class Statistic(StrEnum):
    """How the datapoints of one period are summarised (the CloudWatch statistic names)."""

    AVERAGE = "Average"
    SUM = "Sum"
    MINIMUM = "Minimum"
    MAXIMUM = "Maximum"
    SAMPLE_COUNT = "SampleCount"


@dataclass(frozen=True, slots=True)
class MetricDatum:
    """One observation of a metric at a point in time."""

    namespace: str
    name: str
    value: float
    timestamp: datetime
    dimensions: Mapping[str, str] = field(default_factory=dict)
    unit: str = "None"


@dataclass(frozen=True, slots=True)
class MetricQuery:
    """Which series to read and how to aggregate it per period."""

    namespace: str
    name: str
    statistic: Statistic = Statistic.AVERAGE
    period_seconds: int = 300
    dimensions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Datapoint:
    """The statistic of one period; `timestamp` is the period's start (UTC)."""

    timestamp: datetime
    value: float


class MetricsError(ValueError):
    """A datum or query breaks the metrics limits (message names the datum index and field)."""


@runtime_checkable
class MetricsStore(Protocol):
    """A store of metric time series with per-period statistics (CloudWatch semantics)."""

    def put_metric_data(self, data: list[MetricDatum]) -> None:
        """Record up to `MAX_DATUMS_PER_PUT` datapoints."""
        ...

    def get_statistics(self, query: MetricQuery, start: datetime, end: datetime) -> list[Datapoint]:
        """One datapoint per period of [start, end) that holds data, oldest first."""
        ...


def as_utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime (naive values are read as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def dimension_key(dimensions: Mapping[str, str]) -> str:
    """A canonical text form of a dimension set (sorted by name), equal for equal sets."""
    return "\x1e".join(f"{name}\x1f{dimensions[name]}" for name in sorted(dimensions))


def validate_data(data: list[MetricDatum]) -> None:
    """Raise `MetricsError` when a put breaks the limits."""
    if not data:
        raise MetricsError("put_metric_data needs at least one datum")
    if len(data) > MAX_DATUMS_PER_PUT:
        raise MetricsError(f"put_metric_data takes at most {MAX_DATUMS_PER_PUT} datums, got {len(data)}")
    for index, datum in enumerate(data):
        if not datum.namespace or not datum.name:
            raise MetricsError(f"datum {index}: namespace and name must not be empty")
        if datum.namespace.startswith("AWS/"):
            raise MetricsError(f"datum {index}: namespace must not start with 'AWS/' (reserved)")
        if isinstance(datum.value, bool) or not isinstance(datum.value, int | float):
            raise MetricsError(f"datum {index}: value must be a number")
        if not math.isfinite(datum.value):
            raise MetricsError(f"datum {index}: value must be finite")
        if len(datum.dimensions) > MAX_DIMENSIONS:
            raise MetricsError(f"datum {index}: at most {MAX_DIMENSIONS} dimensions")
        if any(not name or not value for name, value in datum.dimensions.items()):
            raise MetricsError(f"datum {index}: dimension names and values must not be empty")


def validate_query(query: MetricQuery, start: datetime, end: datetime) -> None:
    """Raise `MetricsError` when a query cannot be answered."""
    if query.period_seconds < 1 or (query.period_seconds >= 60 and query.period_seconds % 60):
        raise MetricsError("period_seconds must be 1..59 or a multiple of 60")
    if as_utc(end) <= as_utc(start):
        raise MetricsError("end must be after start")
