"""Service-level objectives: what the platform promises its users, measured, alarmed and budgeted.

| SLO | indicator (good / all) | source |
|---|---|---|
| event-to-alert latency | stream events decided within N s of arriving | stream handler (`StreamEvents`) |
| API availability | API calls answered without a 5xx | access-log meter (`ApiRequests`) |
| API latency (p99) | API calls answered within N ms (99% of them: the p99) | access-log meter |
| batch freshness | hours in which the batch lake's newest landing was at most N h old | this monitor |
| stream freshness | hours in which the stream's newest scored landing was at most N min old | this monitor |

Targets live in the settings (`CDP_SLO_*`). Over the window (`CDP_SLO_WINDOW_DAYS`) the error budget is
the share of events (or hours) allowed to be bad, `1 - target`; what is left of it is
`1 - bad / ((1 - target) * all)` (negative: overspent). The indicators are metrics in `CDP/SLO`
(`inference.slo_metrics`; the freshness ones published here on each check) and each objective has an
alarm (`monitoring.rules.slo_alarms`) that calls for an operator.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cdp.alarms.port import AlarmNotFound
from cdp.lake.tables import TRANSACTIONS
from cdp.metrics.port import MetricDatum, MetricQuery, Statistic
from inference.slo_metrics import (
    API_LATENCY_P99,
    API_REQUESTS,
    API_REQUESTS_OVER_OBJECTIVE,
    API_SERVER_ERRORS,
    EVENT_TO_ALERT_P99,
    SLO_NAMESPACE,
    STREAM_EVENTS,
    STREAM_EVENTS_OVER_OBJECTIVE,
)
from inference.streaming.scored import TRANSACTIONS_SCORED
from monitoring.rules import BATCH_FRESHNESS, STREAM_FRESHNESS, SloThresholds, slo_alarms

if TYPE_CHECKING:
    from cdp.backends import Backends
    from cdp.settings import Settings

_DAY = 86_400
_HOUR = 3_600
_PARTITION = re.compile(r"/year=(\d{4})/month=(\d{1,2})/")


@dataclass(frozen=True)
class Objectives:
    """The declared targets (from the settings)."""

    window_days: int = 30
    event_to_alert_seconds: float = 5.0
    event_to_alert_target: float = 0.99
    api_availability_target: float = 0.999
    api_latency_ms: float = 300.0
    api_latency_target: float = 0.99
    batch_freshness_seconds: float = 26 * _HOUR
    stream_freshness_seconds: float = 15 * 60
    freshness_target: float = 0.99

    @classmethod
    def from_settings(cls, s: Settings) -> Objectives:
        return cls(
            s.slo_window_days, s.slo_event_to_alert_seconds, s.slo_event_to_alert_target,
            s.slo_api_availability_target, s.slo_api_latency_ms, s.slo_api_latency_target,
            s.slo_batch_freshness_hours * _HOUR, s.slo_stream_freshness_minutes * 60, s.slo_freshness_target,
        )  # fmt: skip

    def thresholds(self) -> SloThresholds:
        return SloThresholds(
            self.event_to_alert_seconds, self.api_availability_target, self.api_latency_ms,
            self.batch_freshness_seconds, self.stream_freshness_seconds,
        )  # fmt: skip


@dataclass(frozen=True)
class Freshness:
    """How old a table's newest data is: its newest landing (object write time) and newest partition."""

    table: str
    newest_landing: datetime | None
    newest_partition: str | None  # "2019-10": the newest year/month partition (event time)
    age_seconds: float | None


@dataclass
class SloStatus:
    """One objective over the window: its target, its current value and what is left of its budget."""

    name: str
    objective: str
    target: float
    current: str  # the latest measurement, in words ("p99 1.2 s (last hour)", "3 h 10 min old")
    good: float  # good events (or hours) in the window
    total: float  # all events (or hours) in the window
    alarm: str | None = None  # the objective's alarm state
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def sli(self) -> float | None:
        return self.good / self.total if self.total else None

    @property
    def budget_left(self) -> float | None:
        """Share of the window's error budget not spent (1: untouched, 0: spent, negative: overspent)."""
        if not self.total:
            return None
        return 1 - (self.total - self.good) / ((1 - self.target) * self.total)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sli": self.sli, "budget_left": self.budget_left}


def table_freshness(backends: Backends, table: str, now: datetime) -> Freshness:
    """The newest object under the table's prefix in the lake, and its newest partition."""
    newest: datetime | None = None
    partition: tuple[int, int] | None = None
    for info in backends.object_store.list(f"s3://{backends.settings.lake_bucket}/{table}/"):
        modified = info.last_modified if info.last_modified.tzinfo else info.last_modified.replace(tzinfo=UTC)
        newest = modified if newest is None or modified > newest else newest
        found = _PARTITION.search(info.uri)
        if found:
            key = (int(found.group(1)), int(found.group(2)))
            partition = key if partition is None or key > partition else partition
    return Freshness(
        table,
        newest,
        f"{partition[0]:04d}-{partition[1]:02d}" if partition else None,
        None if newest is None else max(0.0, (now - newest).total_seconds()),
    )


def publish_freshness(backends: Backends, now: datetime) -> dict[str, Freshness]:
    """Measure the batch and stream freshness now and publish them (only what has data)."""
    measured = {
        "batch": table_freshness(backends, TRANSACTIONS.name, now),
        "stream": table_freshness(backends, TRANSACTIONS_SCORED.name, now),
    }
    data = [
        MetricDatum(SLO_NAMESPACE, metric, f.age_seconds, now, unit="Seconds")
        for metric, f in ((BATCH_FRESHNESS, measured["batch"]), (STREAM_FRESHNESS, measured["stream"]))
        if f.age_seconds is not None
    ]
    if data:
        backends.metrics.put_metric_data(data)
    return measured


def _sum(backends: Backends, name: str, start: datetime, end: datetime) -> float:
    query = MetricQuery(SLO_NAMESPACE, name, Statistic.SUM, _DAY)
    return sum(p.value for p in backends.metrics.get_statistics(query, start, end))


def _worst(backends: Backends, name: str, start: datetime, end: datetime) -> float | None:
    points = backends.metrics.get_statistics(
        MetricQuery(SLO_NAMESPACE, name, Statistic.MAXIMUM, _HOUR), start, end
    )
    return max((p.value for p in points), default=None)


def _fresh_hours(
    backends: Backends, name: str, limit: float, start: datetime, end: datetime
) -> tuple[int, int]:
    """(hours whose freshest check was within `limit`, hours with a check) in the window."""
    points = backends.metrics.get_statistics(
        MetricQuery(SLO_NAMESPACE, name, Statistic.MINIMUM, _HOUR), start, end
    )
    return sum(1 for p in points if p.value <= limit), len(points)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "no data landed"
    if seconds < _HOUR:
        return f"{seconds / 60:.1f} min old"
    if seconds < 2 * _DAY:
        return f"{seconds / _HOUR:.1f} h old"
    return f"{seconds / _DAY:.0f} days old"


def slo_statuses(
    backends: Backends, objectives: Objectives, now: datetime, freshness: dict[str, Freshness]
) -> list[SloStatus]:
    """Every objective's status over the window ending at `now` (freshness as just measured)."""
    o = objectives
    start, last_hour = now - timedelta(days=o.window_days), now - timedelta(hours=1)
    end = now + timedelta(seconds=1)  # the datapoints published at `now` belong to the window
    events = _sum(backends, STREAM_EVENTS, start, end)
    late = _sum(backends, STREAM_EVENTS_OVER_OBJECTIVE, start, end)
    calls = _sum(backends, API_REQUESTS, start, end)
    errors = _sum(backends, API_SERVER_ERRORS, start, end)
    slow = _sum(backends, API_REQUESTS_OVER_OBJECTIVE, start, end)
    p99_event, p99_api = (
        _worst(backends, EVENT_TO_ALERT_P99, last_hour, end),
        _worst(backends, API_LATENCY_P99, last_hour, end),
    )
    batch_good, batch_hours = _fresh_hours(backends, BATCH_FRESHNESS, o.batch_freshness_seconds, start, end)
    stream_good, stream_hours = _fresh_hours(
        backends, STREAM_FRESHNESS, o.stream_freshness_seconds, start, end
    )
    batch, stream = freshness["batch"], freshness["stream"]
    return [
        SloStatus(
            "event-to-alert latency", f"decided within {o.event_to_alert_seconds:g} s of arrival",
            o.event_to_alert_target,
            "no events in the last hour" if p99_event is None else f"p99 {p99_event:.2f} s (last hour)",
            events - late, events,
        ),
        SloStatus(
            "API availability", "answered without a server error (5xx)", o.api_availability_target,
            "no calls" if not calls else f"{1 - errors / calls:.3%} of {calls:,.0f} calls",
            calls - errors, calls,
        ),
        SloStatus(
            "API latency p99", f"answered within {o.api_latency_ms:g} ms", o.api_latency_target,
            "no calls in the last hour" if p99_api is None else f"p99 {p99_api:.1f} ms (last hour)",
            calls - slow, calls,
        ),
        SloStatus(
            "batch freshness", f"newest batch landing at most {o.batch_freshness_seconds / _HOUR:g} h old",
            o.freshness_target, _age(batch.age_seconds), batch_good, batch_hours,
            notes={"newest_partition": batch.newest_partition},
        ),
        SloStatus(
            "stream freshness", f"newest stream landing at most {o.stream_freshness_seconds / 60:g} min old",
            o.freshness_target, _age(stream.age_seconds), stream_good, stream_hours,
            notes={"newest_partition": stream.newest_partition},
        ),
    ]  # fmt: skip


def check_slos(backends: Backends, objectives: Objectives, now: datetime | None = None) -> list[SloStatus]:
    """`cdp monitor slo`: publish the freshness indicators, put and evaluate the SLO alarms, and report
    each objective with its alarm's state."""
    now = now or datetime.now(UTC)
    freshness = publish_freshness(backends, now)
    alarms = slo_alarms(objectives.thresholds())
    for alarm in alarms:
        backends.alarms.put_alarm(alarm)
    for alarm in alarms:  # at the end of the period holding `now`: what was just published counts
        period = alarm.metric.period_seconds
        period_end = (int(now.timestamp()) // period + 1) * period
        backends.alarms.evaluate(datetime.fromtimestamp(period_end, UTC), [alarm.name])
    statuses = slo_statuses(backends, objectives, now, freshness)
    for status, alarm in zip(statuses, alarms, strict=True):
        try:
            status.alarm = str(backends.alarms.state(alarm.name))
        except AlarmNotFound:
            status.alarm = None
    return statuses
