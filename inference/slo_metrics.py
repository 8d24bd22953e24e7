"""The service-level indicators serving publishes: event-to-alert latency (stream) and API availability and
latency (every HTTP call), as metrics in namespace `CDP/SLO` (what `monitoring.slo` and its alarms read).

Stream (one put per handled batch, `EventLatencyMeter`): the latency of an event is the time from its
arrival on the stream (Kinesis' `approximateArrivalTimestamp`: when the platform received it; a replayed
event's own `ts` is its business time, years ago) to its decision being landed, alert included.
- `StreamEvents` (Sum): events decided; `StreamEventsOverObjective` (Sum): decided later than the objective;
- `EventToAlertSecondsP99`, `EventToAlertSecondsMax`: the batch's 99th percentile and worst latency.
API (one put per `flush_seconds`, `ApiMeter`, fed by the access-log middleware):
- `ApiRequests`, `ApiServerErrors` (5xx), `ApiRequestsOverObjective` (slower than the objective) (Sum);
- `ApiErrorRate` (5xx share of the interval) and `ApiLatencyP99Ms` (the interval's 99th percentile).
Publishing never fails a decision or a request: a failing metrics store is logged by error class only.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from cdp.metrics.port import MAX_DATUMS_PER_PUT, MetricDatum, MetricsStore

log = logging.getLogger("cdp.inference.slo")

SLO_NAMESPACE = "CDP/SLO"
STREAM_EVENTS = "StreamEvents"
STREAM_EVENTS_OVER_OBJECTIVE = "StreamEventsOverObjective"
EVENT_TO_ALERT_P99 = "EventToAlertSecondsP99"
EVENT_TO_ALERT_MAX = "EventToAlertSecondsMax"
API_REQUESTS = "ApiRequests"
API_SERVER_ERRORS = "ApiServerErrors"
API_REQUESTS_OVER_OBJECTIVE = "ApiRequestsOverObjective"
API_ERROR_RATE = "ApiErrorRate"
API_LATENCY_P99 = "ApiLatencyP99Ms"

MAX_PENDING_CALLS = 10_000  # the API meter flushes early at this many calls: its memory stays bounded

MetricsSource = Callable[[], MetricsStore]


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` percentile (0 < q <= 100) of non-empty `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _put(metrics: MetricsSource | None, data: list[MetricDatum], what: str) -> None:
    if metrics is None or not data:
        return
    try:
        store = metrics()
        for i in range(0, len(data), MAX_DATUMS_PER_PUT):
            store.put_metric_data(data[i : i + MAX_DATUMS_PER_PUT])
    except Exception as error:  # an indicator must never fail what it measures
        log.warning("publishing %s failed: %s", what, type(error).__name__)


class EventLatencyMeter:
    """Publishes the event-to-alert indicators of each batch the stream handler lands."""

    def __init__(
        self,
        metrics: MetricsSource | None,
        objective_seconds: float,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._metrics = metrics
        self.objective_seconds = objective_seconds
        self._wall_clock = wall_clock

    def landed(self, arrivals: Sequence[float | None]) -> list[float]:
        """The batch whose events arrived at `arrivals` (epoch seconds; None: unknown) was just landed:
        publish its indicators; returns the latencies (seconds) of the events with a known arrival."""
        now = self._wall_clock()
        latencies = [max(0.0, now - a) for a in arrivals if a is not None]
        if not latencies:
            return []
        over = sum(1 for s in latencies if s > self.objective_seconds)
        at = datetime.fromtimestamp(now, UTC)
        data = [
            MetricDatum(SLO_NAMESPACE, STREAM_EVENTS, float(len(latencies)), at, unit="Count"),
            MetricDatum(SLO_NAMESPACE, STREAM_EVENTS_OVER_OBJECTIVE, float(over), at, unit="Count"),
            MetricDatum(SLO_NAMESPACE, EVENT_TO_ALERT_P99, percentile(latencies, 99), at, unit="Seconds"),
            MetricDatum(SLO_NAMESPACE, EVENT_TO_ALERT_MAX, max(latencies), at, unit="Seconds"),
        ]
        _put(self._metrics, data, "event-to-alert latency")
        return latencies


class ApiMeter:
    """Counts every API call (status, milliseconds) and publishes the interval's indicators at most every
    `flush_seconds` (on the call that finds the interval over, or at `MAX_PENDING_CALLS` calls) and at
    `flush()`."""

    def __init__(
        self,
        metrics: MetricsSource | None,
        objective_ms: float,
        flush_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self.objective_ms = objective_ms
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._latencies: list[float] = []
        self._errors = 0
        self._last_flush = clock()

    def record(self, status: int, ms: float) -> None:
        with self._lock:
            self._latencies.append(ms)
            self._errors += status >= 500
            due = (
                self._clock() - self._last_flush >= self.flush_seconds
                or len(self._latencies) >= MAX_PENDING_CALLS
            )
        if due:
            self.flush()

    def flush(self) -> None:
        """Publish what was counted since the last flush (nothing when no call came)."""
        with self._lock:
            latencies, errors = self._latencies, self._errors
            self._latencies, self._errors, self._last_flush = [], 0, self._clock()
        if not latencies:
            return
        at, n = datetime.now(UTC), len(latencies)
        over = sum(1 for ms in latencies if ms > self.objective_ms)
        data = [
            MetricDatum(SLO_NAMESPACE, API_REQUESTS, float(n), at, unit="Count"),
            MetricDatum(SLO_NAMESPACE, API_SERVER_ERRORS, float(errors), at, unit="Count"),
            MetricDatum(SLO_NAMESPACE, API_REQUESTS_OVER_OBJECTIVE, float(over), at, unit="Count"),
            MetricDatum(SLO_NAMESPACE, API_ERROR_RATE, errors / n, at),
            MetricDatum(SLO_NAMESPACE, API_LATENCY_P99, percentile(latencies, 99), at, unit="Milliseconds"),
        ]
        _put(self._metrics, data, "API indicators")
