"""Metric alarms with CloudWatch semantics, evaluated by our own code (locally and in tests against AWS
adapters alike: the moto CloudWatch mock stores alarms but never evaluates them).

An alarm watches one statistic of one metric over the last `evaluation_periods` complete periods (N) and
goes to ALARM when at least `datapoints_to_alarm` (M) of them breach the threshold, OK otherwise. Periods
without data are handled per `TreatMissingData`:
- BREACHING / NOT_BREACHING: a missing period counts as breaching / not breaching;
- MISSING (the default): missing periods are left out; when all N are missing the state is
  INSUFFICIENT_DATA;
- IGNORE: missing periods are left out; when all N are missing the current state is kept.
(CloudWatch may also look back further than N periods when data is sparse; this evaluator looks at
exactly N, which is the same whenever the metric is published every period.)

Every state change is published as a "CloudWatch Alarm State Change" event in the real AWS shape
(`source` "aws.cloudwatch", `detail.alarmName`, `detail.state.value`, `detail.previousState.value`), so a
rule written for EventBridge matches it on the local bus too. Alarm states are kept in SQLite so a restart
neither forgets an ALARM nor re-announces it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp.events.port import ALARM_STATE_CHANGE, Event, EventBus
from cdp.metrics.port import MetricQuery, MetricsStore

if TYPE_CHECKING:
    from cdp.settings import Settings


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class ComparisonOperator(StrEnum):
    GREATER_THAN_OR_EQUAL = "GreaterThanOrEqualToThreshold"
    GREATER_THAN = "GreaterThanThreshold"
    LESS_THAN = "LessThanThreshold"
    LESS_THAN_OR_EQUAL = "LessThanOrEqualToThreshold"

    def breaches(self, value: float, threshold: float) -> bool:
        """True when `value` is on the alarming side of `threshold`."""
        return {
            ComparisonOperator.GREATER_THAN_OR_EQUAL: value >= threshold,
            ComparisonOperator.GREATER_THAN: value > threshold,
            ComparisonOperator.LESS_THAN: value < threshold,
            ComparisonOperator.LESS_THAN_OR_EQUAL: value <= threshold,
        }[self]


class TreatMissingData(StrEnum):
    MISSING = "missing"
    IGNORE = "ignore"
    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"


@dataclass(frozen=True, slots=True)
class MetricAlarm:
    """An alarm definition (the fields of CloudWatch PutMetricAlarm that the evaluator uses)."""

    name: str
    metric: MetricQuery
    threshold: float
    comparison: ComparisonOperator
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None  # M; defaults to N
    treat_missing_data: TreatMissingData = TreatMissingData.MISSING
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("alarm name must not be empty")
        if self.evaluation_periods < 1:
            raise ValueError(f"alarm {self.name}: evaluation_periods must be at least 1")
        if not 1 <= self.to_alarm <= self.evaluation_periods:
            raise ValueError(f"alarm {self.name}: datapoints_to_alarm must be within 1..evaluation_periods")

    @property
    def to_alarm(self) -> int:
        """M: how many breaching periods put the alarm in ALARM."""
        return self.evaluation_periods if self.datapoints_to_alarm is None else self.datapoints_to_alarm


@dataclass(frozen=True, slots=True)
class Verdict:
    """The state the datapoints call for, and why (None: keep the current state)."""

    state: AlarmState | None
    reason: str


def decide(alarm: MetricAlarm, values: Sequence[float | None]) -> Verdict:
    """The state that N period values (oldest first, None = missing) call for under `alarm`'s rules."""
    if len(values) != alarm.evaluation_periods:
        raise ValueError(f"alarm {alarm.name}: expected {alarm.evaluation_periods} values, got {len(values)}")
    treat = alarm.treat_missing_data
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    if not present and treat is TreatMissingData.MISSING:
        return Verdict(AlarmState.INSUFFICIENT_DATA, f"no datapoints in the last {len(values)} periods")
    if not present and treat is TreatMissingData.IGNORE:
        return Verdict(None, f"no datapoints in the last {len(values)} periods (missing data ignored)")
    breaching = sum(alarm.comparison.breaches(v, alarm.threshold) for v in present)
    if treat is TreatMissingData.BREACHING:
        breaching += missing
    state = AlarmState.ALARM if breaching >= alarm.to_alarm else AlarmState.OK
    reason = (
        f"{breaching} of the last {len(values)} periods breached the threshold {alarm.threshold}"
        f" ({alarm.comparison.value}, {alarm.to_alarm} needed; {missing} missing treated as {treat.value})"
    )
    return Verdict(state, reason)


@dataclass(frozen=True, slots=True)
class StoredState:
    state: AlarmState
    reason: str
    updated: datetime


@dataclass(frozen=True, slots=True)
class StateChange:
    """An alarm's transition, as published on the event bus."""

    alarm: MetricAlarm
    previous: StoredState
    current: StoredState
    values: tuple[float | None, ...]


class SqliteAlarmStates:
    """The current state of every alarm, durable across restarts."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS alarm_states (name TEXT PRIMARY KEY, state TEXT NOT NULL,"
            " reason TEXT NOT NULL, updated_ms INTEGER NOT NULL)"
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteAlarmStates:
        """The platform's alarm states: `<state_dir>/alarms.sqlite`."""
        return cls(settings.state_dir / "alarms.sqlite")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def get(self, name: str) -> StoredState | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT state, reason, updated_ms FROM alarm_states WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            return None
        return StoredState(AlarmState(row[0]), row[1], datetime.fromtimestamp(row[2] / 1000, UTC))

    def set(self, name: str, state: StoredState) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO alarm_states (name, state, reason, updated_ms) VALUES (?, ?, ?, ?)",
                (name, state.state.value, state.reason, int(state.updated.timestamp() * 1000)),
            )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def state_change_event(change: StateChange, account: str = "000000000000", region: str = "local") -> Event:
    """The "CloudWatch Alarm State Change" event of `change`, in the shape CloudWatch sends."""
    alarm, metric = change.alarm, change.alarm.metric
    detail: dict[str, Any] = {
        "alarmName": alarm.name,
        "state": {
            "value": change.current.state.value,
            "reason": change.current.reason,
            "reasonData": json.dumps({"recentDatapoints": list(change.values), "threshold": alarm.threshold}),
            "timestamp": _iso(change.current.updated),
        },
        "previousState": {
            "value": change.previous.state.value,
            "reason": change.previous.reason,
            "timestamp": _iso(change.previous.updated),
        },
        "configuration": {
            "description": alarm.description,
            "metrics": [
                {
                    "id": "m0",
                    "metricStat": {
                        "metric": {
                            "namespace": metric.namespace,
                            "name": metric.name,
                            "dimensions": dict(metric.dimensions),
                        },
                        "period": metric.period_seconds,
                        "stat": str(metric.statistic),
                    },
                    "returnData": True,
                }
            ],
        },
    }
    return Event(
        source="aws.cloudwatch",
        detail_type=ALARM_STATE_CHANGE,
        detail=detail,
        time=change.current.updated,
        resources=(f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm.name}",),
    )


class AlarmEvaluator:
    """Evaluates alarms over a metrics store, keeps their states, publishes their state changes."""

    def __init__(
        self,
        metrics: MetricsStore,
        states: SqliteAlarmStates,
        bus: EventBus | None = None,
        *,
        clock: Callable[[], float] = time.time,
        account: str = "000000000000",
        region: str = "local",
    ) -> None:
        self._metrics = metrics
        self._states = states
        self._bus = bus
        self._clock = clock
        self._account = account
        self._region = region

    def period_values(self, alarm: MetricAlarm) -> tuple[float | None, ...]:
        """The statistic of each of the last N complete periods, oldest first (None = no data)."""
        period = alarm.metric.period_seconds
        end_s = int(self._clock()) // period * period
        start_s = end_s - alarm.evaluation_periods * period
        start, end = datetime.fromtimestamp(start_s, UTC), datetime.fromtimestamp(end_s, UTC)
        found = {
            int(point.timestamp.timestamp()): point.value
            for point in self._metrics.get_statistics(alarm.metric, start, end)
        }
        return tuple(found.get(start_s + i * period) for i in range(alarm.evaluation_periods))

    def state(self, alarm_name: str) -> AlarmState:
        """The alarm's current state (INSUFFICIENT_DATA before its first evaluation, as in CloudWatch)."""
        stored = self._states.get(alarm_name)
        return stored.state if stored else AlarmState.INSUFFICIENT_DATA

    def evaluate(self, alarm: MetricAlarm) -> StateChange | None:
        """Evaluate `alarm` now; on a state change, publish the event, store the state and return it."""
        values = self.period_values(alarm)
        verdict = decide(alarm, values)
        now = datetime.fromtimestamp(self._clock(), UTC)
        previous = self._states.get(alarm.name) or StoredState(
            AlarmState.INSUFFICIENT_DATA, "Unchecked: initial alarm creation", now
        )
        if verdict.state is None or verdict.state is previous.state:
            return None
        change = StateChange(alarm, previous, StoredState(verdict.state, verdict.reason, now), values)
        if self._bus is not None:
            # published before the state is stored: a crash in between re-announces the change on the
            # next evaluation rather than losing it (rule cooldowns absorb the repeat)
            self._bus.put_events([state_change_event(change, self._account, self._region)])
        self._states.set(alarm.name, change.current)
        return change

    def evaluate_all(self, alarms: Sequence[MetricAlarm]) -> list[StateChange]:
        """Evaluate each alarm; the state changes, in the alarms' order."""
        return [change for alarm in alarms if (change := self.evaluate(alarm)) is not None]
