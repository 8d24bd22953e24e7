"""The monitor run's alarm step is the same code on both backends: it puts the models' drift alarms,
evaluates them through the alarms port and reports states and changes alike from the embedded evaluator
and from CloudWatch (moto; its evaluator emulated with SetAlarmState, as in the alarms contract)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from cdp.alarms.cloudwatch import CloudWatchAlarmService
from cdp.alarms.local import SqliteAlarmService
from cdp.events.local import SqliteEventBus
from cdp.metrics import MetricDatum
from cdp.metrics.local import SqliteMetricsStore
from monitoring.actions import Timeline
from monitoring.loop import MonitorRun, _evaluate_alarms
from monitoring.rules import NAMESPACE, SCORE_PSI, DriftThresholds, alarm_name, model_alarms

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PSI = alarm_name("cdp-fraud", SCORE_PSI)
THRESHOLDS = DriftThresholds()


@pytest.fixture(params=["embedded", "cloudwatch"])
def platform(request, tmp_path, monkeypatch) -> Iterator[tuple[SimpleNamespace, Callable[[datetime], None]]]:
    """Backends with only the alarms port, and `breach_psi(at)`: the fraud score's PSI breaches at `at`."""
    if request.param == "embedded":
        metrics = SqliteMetricsStore(tmp_path / "metrics.sqlite")
        bus = SqliteEventBus(tmp_path / "events.sqlite")
        alarms = SqliteAlarmService(tmp_path / "alarms.sqlite", metrics, bus)

        def breach_psi(at: datetime) -> None:
            metrics.put_metric_data([MetricDatum(NAMESPACE, SCORE_PSI, 0.5, at, {"Model": "cdp-fraud"})])

        yield SimpleNamespace(alarms=alarms), breach_psi
        for store in (alarms, bus, metrics):
            store.close()
        return
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("cloudwatch", region_name="eu-west-1")

        def breach_psi(at: datetime) -> None:  # what CloudWatch's evaluator would do; moto has none
            client.set_alarm_state(AlarmName=PSI, StateValue="ALARM", StateReason="Threshold Crossed")

        yield SimpleNamespace(alarms=CloudWatchAlarmService(client)), breach_psi


def _run(backends: SimpleNamespace, now: datetime, timeline: Timeline) -> MonitorRun:
    run = MonitorRun(started_at=now, now=now)
    _evaluate_alarms(backends, run, ["cdp-fraud"], THRESHOLDS, now, timeline)  # type: ignore[arg-type]
    return run


def test_the_alarm_step_reports_the_same_on_both_backends(platform) -> None:
    backends, breach_psi = platform
    timeline = Timeline()
    first = _run(backends, T0, timeline)
    assert set(first.alarm_states) == {alarm.name for alarm in model_alarms("cdp-fraud", THRESHOLDS)}
    assert first.alarm_states["cdp-fraud-degraded-DegradedDecisions"] != "ALARM"  # the champion decided
    assert PSI in first.alarm_states and first.alarm_states[PSI] != "ALARM"
    # no drift alarm moves; the degraded-decisions alarm (missing data: not breaching) settles to OK
    assert [(c["alarm"], c["current"]) for c in first.alarm_changes] in (
        [],
        [("cdp-fraud-degraded-DegradedDecisions", "OK")],
    )

    later = T0 + timedelta(seconds=THRESHOLDS.period_seconds)
    breach_psi(later)
    second = _run(backends, later, timeline)
    assert [(c["alarm"], c["current"]) for c in second.alarm_changes] == [(PSI, "ALARM")]
    assert second.alarm_states[PSI] == "ALARM"
    assert any(e.what.startswith(f"alarm {PSI}: ") and e.what.endswith("-> ALARM") for e in timeline.entries)
    assert _run(backends, later, timeline).alarm_changes == []  # a change is reported once
