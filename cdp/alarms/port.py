"""The alarms port (CloudWatch metric-alarm semantics): define alarms, let them be evaluated, read states.

An alarm watches one statistic of one metric over the last `evaluation_periods` complete periods (N) and
is in ALARM when at least `datapoints_to_alarm` (M) of them breach the threshold, OK otherwise; periods
without data count per `TreatMissingData`. A new alarm is INSUFFICIENT_DATA until its first evaluation.

Who evaluates differs by adapter, what callers see does not: the embedded adapter evaluates when
`evaluate` is called and puts each state change on the event bus as CloudWatch's "Alarm State Change"
event; CloudWatch evaluates on its own and sends those events itself, so its adapter's `evaluate` only
reports the changes it observed. Either way `evaluate` returns the changes and `state` the current state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from cdp.metrics.port import MetricQuery


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


class AlarmNotFound(LookupError):
    """No alarm of that name was put."""


@dataclass(frozen=True, slots=True)
class MetricAlarm:
    """An alarm definition (the fields of CloudWatch PutMetricAlarm that the alarms use)."""

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
class StateRecord:
    """An alarm's state, why it is in it and since when (UTC)."""

    state: AlarmState
    reason: str
    updated: datetime


@dataclass(frozen=True, slots=True)
class StateChange:
    """An alarm's transition; `values` are the period values it was decided on, oldest first (None:
    no data), when known."""

    alarm: MetricAlarm
    previous: StateRecord
    current: StateRecord
    values: tuple[float | None, ...] = ()


OnChange = Callable[[StateChange], None]
"""Told of each state change by `evaluate`, before the change's event is put on the bus."""


@runtime_checkable
class AlarmService(Protocol):
    """Metric alarms: their definitions, their evaluation and their current states."""

    def put_alarm(self, alarm: MetricAlarm) -> None:
        """Create or update the alarm's definition; an update keeps its current state."""
        ...

    def get_alarm(self, name: str) -> MetricAlarm:
        """The definition put under `name`; `AlarmNotFound` if none."""
        ...

    def state(self, name: str) -> AlarmState:
        """The alarm's current state; `AlarmNotFound` if it was never put."""
        ...

    def evaluate(
        self,
        now: datetime | None = None,
        names: Sequence[str] | None = None,
        on_change: OnChange | None = None,
    ) -> list[StateChange]:
        """Bring the alarms (those named, or all) up to `now` (default: the clock); the state changes
        since the last call, in the alarms' order, each told to `on_change` first."""
        ...
