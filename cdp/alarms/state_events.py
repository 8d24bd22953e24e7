"""CloudWatch's "Alarm State Change" event, as the embedded adapter puts it on the event bus.

The real AWS shape (`source` "aws.cloudwatch", `detail.alarmName`, `detail.state.value`,
`detail.previousState.value`), so a rule written for EventBridge matches it on the local bus too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cdp.alarms.port import StateChange
from cdp.events.port import ALARM_STATE_CHANGE, Event


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
