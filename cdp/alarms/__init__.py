"""The alarms port (CloudWatch metric-alarm semantics): an embedded evaluator and a CloudWatch adapter."""

from cdp.alarms.port import (
    AlarmNotFound,
    AlarmService,
    AlarmState,
    ComparisonOperator,
    MetricAlarm,
    StateChange,
    StateRecord,
    TreatMissingData,
)

__all__ = [
    "AlarmNotFound",
    "AlarmService",
    "AlarmState",
    "ComparisonOperator",
    "MetricAlarm",
    "StateChange",
    "StateRecord",
    "TreatMissingData",
]
