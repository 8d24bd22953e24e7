"""AWS adapter of the alarms port: CloudWatch PutMetricAlarm and DescribeAlarms.

CloudWatch evaluates its alarms by itself and sends each state change to EventBridge, so `evaluate` starts
nothing: it reads the alarms' states and reports those that changed since this adapter last read them
(the first read of an alarm only records its state). The `now` it is given is not used.
`put_alarm` writes only a definition that differs from CloudWatch's, so putting the same alarms on every
run costs one read each and leaves the alarms' history alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdp.alarms.port import (
    AlarmNotFound,
    AlarmState,
    ComparisonOperator,
    MetricAlarm,
    OnChange,
    StateChange,
    StateRecord,
    TreatMissingData,
)
from cdp.metrics.port import MetricQuery, Statistic, as_utc

if TYPE_CHECKING:
    from cdp.settings import Settings

_NAMES_PER_DESCRIBE = 100  # DescribeAlarms takes at most 100 AlarmNames


def _definition(entry: dict[str, Any]) -> MetricAlarm:
    metric = MetricQuery(
        namespace=entry["Namespace"],
        name=entry["MetricName"],
        statistic=Statistic(entry["Statistic"]),
        period_seconds=int(entry["Period"]),
        dimensions={d["Name"]: d["Value"] for d in entry.get("Dimensions", [])},
    )
    to_alarm = entry.get("DatapointsToAlarm")
    return MetricAlarm(
        name=entry["AlarmName"],
        metric=metric,
        threshold=float(entry["Threshold"]),
        comparison=ComparisonOperator(entry["ComparisonOperator"]),
        evaluation_periods=int(entry["EvaluationPeriods"]),
        datapoints_to_alarm=int(to_alarm) if to_alarm is not None else None,
        treat_missing_data=TreatMissingData(entry.get("TreatMissingData") or TreatMissingData.MISSING),
        description=entry.get("AlarmDescription", ""),
    )


def _record(entry: dict[str, Any]) -> StateRecord:
    return StateRecord(
        AlarmState(entry["StateValue"]), entry.get("StateReason", ""), as_utc(entry["StateUpdatedTimestamp"])
    )


def _recent_datapoints(entry: dict[str, Any]) -> tuple[float | None, ...]:
    """The datapoints CloudWatch decided the state on, when its reason data names them."""
    try:
        points = json.loads(entry.get("StateReasonData") or "{}").get("recentDatapoints", [])
    except (ValueError, AttributeError):
        return ()
    return tuple(None if p is None else float(p) for p in points)


class CloudWatchAlarmService:
    """The alarms port over CloudWatch (`client` is a boto3 CloudWatch client)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._seen: dict[str, StateRecord] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> CloudWatchAlarmService:
        from cdp.aws_clients import aws_client

        return cls(aws_client(settings, "cloudwatch"))

    def put_alarm(self, alarm: MetricAlarm) -> None:
        """PutMetricAlarm, skipped when CloudWatch holds the same definition already (every monitor run
        puts its alarms: an unchanged one needs no call and no configuration-update history entry)."""
        try:
            if self.get_alarm(alarm.name) == alarm:
                return
        except AlarmNotFound:
            pass
        metric = alarm.metric
        request: dict[str, Any] = {
            "AlarmName": alarm.name,
            "AlarmDescription": alarm.description,
            "Namespace": metric.namespace,
            "MetricName": metric.name,
            "Dimensions": [
                {"Name": name, "Value": metric.dimensions[name]} for name in sorted(metric.dimensions)
            ],
            "Statistic": str(metric.statistic),
            "Period": metric.period_seconds,
            "Threshold": float(alarm.threshold),
            "ComparisonOperator": str(alarm.comparison),
            "EvaluationPeriods": alarm.evaluation_periods,
            "TreatMissingData": str(alarm.treat_missing_data),
            "ActionsEnabled": True,
        }
        if alarm.datapoints_to_alarm is not None:
            request["DatapointsToAlarm"] = alarm.datapoints_to_alarm
        self._client.put_metric_alarm(**request)

    def _describe(self, names: Sequence[str] | None) -> list[dict[str, Any]]:
        """The single-metric alarms named (in that order; `AlarmNotFound` for a missing one), or all of
        them by name."""
        if names is None:
            found = [e for e in self._pages({}) if "MetricName" in e]
            return sorted(found, key=lambda entry: entry["AlarmName"])
        by_name: dict[str, dict[str, Any]] = {}
        for start in range(0, len(names), _NAMES_PER_DESCRIBE):
            chunk = list(names[start : start + _NAMES_PER_DESCRIBE])
            by_name.update((e["AlarmName"], e) for e in self._pages({"AlarmNames": chunk}))
        missing = [name for name in names if name not in by_name or "MetricName" not in by_name[name]]
        if missing:
            raise AlarmNotFound(f"no metric alarm named {', '.join(missing)}")
        return [by_name[name] for name in names]

    def _pages(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        kwargs = {**request, "AlarmTypes": ["MetricAlarm"]}
        while True:
            page = self._client.describe_alarms(**kwargs)
            yield from page.get("MetricAlarms", [])
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    def get_alarm(self, name: str) -> MetricAlarm:
        (entry,) = self._describe([name])
        return _definition(entry)

    def state(self, name: str) -> AlarmState:
        (entry,) = self._describe([name])
        return AlarmState(entry["StateValue"])

    def evaluate(
        self,
        now: datetime | None = None,
        names: Sequence[str] | None = None,
        on_change: OnChange | None = None,
    ) -> list[StateChange]:
        changes = []
        for entry in self._describe(names):
            current = _record(entry)
            previous = self._seen.get(entry["AlarmName"])
            self._seen[entry["AlarmName"]] = current
            if previous is None or previous.state is current.state:
                continue
            change = StateChange(_definition(entry), previous, current, _recent_datapoints(entry))
            if on_change is not None:
                on_change(change)
            changes.append(change)
        return changes
