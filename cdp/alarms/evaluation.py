"""How the embedded adapter decides an alarm's state, by CloudWatch's rules.

Missing periods are handled per `TreatMissingData`:
- BREACHING / NOT_BREACHING: a missing period counts as breaching / not breaching;
- MISSING (the default): missing periods are left out; when all N are missing the state is
  INSUFFICIENT_DATA;
- IGNORE: missing periods are left out; when all N are missing the current state is kept.
(CloudWatch may also look back further than N periods when data is sparse; this evaluator looks at
exactly N, which is the same whenever the metric is published every period.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cdp.alarms.port import AlarmState, MetricAlarm, TreatMissingData
from cdp.metrics.port import MetricsStore


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


def period_values(metrics: MetricsStore, alarm: MetricAlarm, at: float) -> tuple[float | None, ...]:
    """The statistic of each of the last N periods complete at epoch second `at`, oldest first (None =
    no data); the period still running at `at` is not looked at."""
    period = alarm.metric.period_seconds
    end_s = int(at) // period * period
    start_s = end_s - alarm.evaluation_periods * period
    start, end = datetime.fromtimestamp(start_s, UTC), datetime.fromtimestamp(end_s, UTC)
    found = {
        int(point.timestamp.timestamp()): point.value
        for point in metrics.get_statistics(alarm.metric, start, end)
    }
    return tuple(found.get(start_s + i * period) for i in range(alarm.evaluation_periods))
