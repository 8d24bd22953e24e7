"""Event bus: local rules, targets, cooldown (durable), schedules; the EventBridge adapter against moto."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdp.alarms.local import SqliteAlarmService
from cdp.alarms.port import ComparisonOperator, MetricAlarm
from cdp.events import ALARM_STATE_CHANGE, Event, EventBus, EventBusError, PatternError, Rule, Target
from cdp.events.eventbridge import EventBridgeBus
from cdp.events.local import SqliteEventBus
from cdp.events.port import BusActivity
from cdp.metrics import MetricDatum, MetricQuery, Statistic
from cdp.metrics.local import SqliteMetricsStore

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
REGION = "eu-west-1"
ALARM_RULE = Rule(
    "retrain-on-drift",
    event_pattern={
        "source": ["aws.cloudwatch"],
        "detail-type": [ALARM_STATE_CHANGE],
        "detail": {"alarmName": [{"prefix": "fraud-"}], "state": {"value": ["ALARM"]}},
    },
)
START_FRAUD = Target("start-fraud", "start-pipeline", {"pipeline": "fraud", "reason": "drift"}, 3600)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A target action that records its calls (and can be told to fail)."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], str]] = []
        self.fail = False

    def __call__(self, parameters: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("pipeline service unavailable")
        self.calls.append((dict(parameters), event["detail-type"]))


def alarm_event(state: str, name: str = "fraud-score-drift") -> Event:
    return Event(
        "aws.cloudwatch",
        ALARM_STATE_CHANGE,
        {"alarmName": name, "state": {"value": state}, "previousState": {"value": "OK"}},
    )


@pytest.fixture
def local(tmp_path):
    clock, recorder = Clock(T0), Recorder()
    bus = SqliteEventBus(tmp_path / "events.sqlite", actions={"start-pipeline": recorder}, clock=clock)
    bus.put_rule(ALARM_RULE)
    bus.put_targets(ALARM_RULE.name, [START_FRAUD])
    yield bus, clock, recorder
    bus.close()


def test_local_bus_satisfies_the_port(local) -> None:
    assert isinstance(local[0], EventBus)


def test_matching_event_starts_the_pipeline_with_its_parameters(local) -> None:
    bus, _, recorder = local
    bus.put_events([alarm_event("OK"), alarm_event("ALARM", "clv-drift"), alarm_event("ALARM")])
    assert recorder.calls == [({"pipeline": "fraud", "reason": "drift"}, ALARM_STATE_CHANGE)]
    assert [d.status for d in bus.deliveries(ALARM_RULE.name)] == ["invoked"]


def test_cooldown_stops_a_storm_and_expires(local) -> None:
    bus, clock, recorder = local
    for _ in range(5):
        bus.put_events([alarm_event("ALARM")])
        clock.now += 60
    assert len(recorder.calls) == 1
    assert [d.status for d in bus.deliveries()] == ["invoked"] + ["suppressed"] * 4
    clock.now = T0 + 3600
    bus.put_events([alarm_event("ALARM")])
    assert len(recorder.calls) == 2


def test_cooldown_survives_a_restart(local, tmp_path) -> None:
    bus, clock, recorder = local
    bus.put_events([alarm_event("ALARM")])
    bus.close()
    clock.now += 600
    restarted = SqliteEventBus(tmp_path / "events.sqlite", actions={"start-pipeline": recorder}, clock=clock)
    restarted.put_events([alarm_event("ALARM")])
    assert len(recorder.calls) == 1
    assert restarted.deliveries()[-1].status == "suppressed"
    restarted.close()


def test_failed_start_is_recorded_without_the_error_text_and_does_not_hold_the_cooldown(local) -> None:
    bus, clock, recorder = local
    recorder.fail = True
    bus.put_events([alarm_event("ALARM")])
    recorder.fail = False
    clock.now += 60
    bus.put_events([alarm_event("ALARM")])
    first, second = bus.deliveries()
    assert (first.status, first.error) == ("failed", "RuntimeError")
    assert second.status == "invoked" and len(recorder.calls) == 1


def test_unregistered_action_is_a_failed_delivery(local) -> None:
    bus, _, _ = local
    bus.put_targets(ALARM_RULE.name, [Target("notify", "send-mail")])
    bus.put_events([alarm_event("ALARM")])
    by_target = {d.target_id: d for d in bus.deliveries()}
    assert by_target["notify"].status == "failed" and "send-mail" in (by_target["notify"].error or "")
    assert by_target["start-fraud"].status == "invoked"


def test_disabled_rule_does_not_fire(local) -> None:
    bus, _, recorder = local
    bus.put_rule(Rule(ALARM_RULE.name, ALARM_RULE.event_pattern, enabled=False))
    bus.put_events([alarm_event("ALARM")])
    assert recorder.calls == [] and bus.list_targets(ALARM_RULE.name) == [START_FRAUD]


def test_scheduled_rule_fires_once_per_rate_and_remembers(local, tmp_path) -> None:
    bus, clock, recorder = local
    bus.put_rule(Rule("weekly-retrain", schedule_expression="rate(7 days)"))
    bus.put_targets("weekly-retrain", [Target("start-fraud", "start-pipeline", {"pipeline": "fraud"})])
    clock.now += 6 * 86400
    assert bus.run_schedules() == []
    clock.now += 86400
    assert bus.run_schedules() == ["weekly-retrain"]
    assert bus.run_schedules() == []
    assert recorder.calls == [({"pipeline": "fraud"}, "Scheduled Event")]
    restarted = SqliteEventBus(tmp_path / "events.sqlite", actions={"start-pipeline": recorder}, clock=clock)
    clock.now += 3 * 86400
    assert restarted.run_schedules() == []
    restarted.close()


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: Rule("bad name!", event_pattern={"source": ["x"]}), EventBusError),
        (lambda: Rule("both", {"source": ["x"]}, "rate(1 day)"), EventBusError),
        (lambda: Rule("neither"), EventBusError),
        (lambda: Rule("cron", schedule_expression="cron(0 12 * * ? *)"), EventBusError),
        (lambda: Rule("plural", schedule_expression="rate(1 days)"), EventBusError),
        (lambda: Rule("pattern", event_pattern={"source": "x"}), PatternError),
        (lambda: Target("t", "start-pipeline", cooldown_seconds=-1), EventBusError),
    ],
)
def test_invalid_rules_and_targets_are_rejected(make, error) -> None:
    with pytest.raises(error):
        make()


def test_limits(local) -> None:
    bus, _, _ = local
    with pytest.raises(EventBusError, match="does not exist"):
        bus.put_targets("nope", [START_FRAUD])
    with pytest.raises(EventBusError, match="at most 5"):
        bus.put_targets(ALARM_RULE.name, [Target(f"t{i}", "start-pipeline") for i in range(5)])
    with pytest.raises(EventBusError, match="at most 10"):
        bus.put_events([alarm_event("ALARM")] * 11)


def test_flapping_alarm_starts_one_retraining_run_per_cooldown(tmp_path, local) -> None:
    bus, clock, recorder = local
    metrics = SqliteMetricsStore(tmp_path / "metrics.sqlite")
    evaluator = SqliteAlarmService(tmp_path / "alarms.sqlite", metrics, bus, clock=clock)
    drift = MetricAlarm(
        "fraud-score-drift",
        MetricQuery("CDP/Monitoring", "psi", Statistic.MAXIMUM, 300),
        0.25,
        ComparisonOperator.GREATER_THAN,
    )
    evaluator.put_alarm(drift)
    for step in range(12):  # 1 hour of a metric flipping every 5 minutes: 6 ALARM transitions
        value = 0.5 if step % 2 == 0 else 0.0
        metrics.put_metric_data(
            [MetricDatum("CDP/Monitoring", "psi", value, datetime.fromtimestamp(clock.now, UTC))]
        )
        clock.now += 300
        evaluator.evaluate()
    assert len(bus.events(source="aws.cloudwatch")) == 12
    assert len(recorder.calls) == 1
    assert [d.status for d in bus.deliveries()].count("suppressed") == 5
    metrics.close()
    evaluator.close()


def test_local_activity_since_a_mark_lists_only_what_came_after_it(local) -> None:
    bus, _, recorder = local
    bus.put_events([alarm_event("ALARM", "clv-drift")])
    mark = bus.activity_mark()
    (event_id,) = bus.put_events([alarm_event("ALARM")])
    activity = bus.activity_since(mark)
    assert [e["id"] for e in activity.events] == [event_id]
    assert [(d.event_id, d.target_id, d.status) for d in activity.deliveries] == [
        (event_id, START_FRAUD.id, "invoked")
    ]
    assert len(recorder.calls) == 1
    assert bus.activity_since(bus.activity_mark()) == BusActivity()


def test_an_action_registered_later_is_run(local) -> None:
    bus, _, _ = local
    late = Recorder()
    bus.put_targets(ALARM_RULE.name, [Target("late", "notify")])
    bus.register_action("notify", late)
    bus.put_events([alarm_event("ALARM")])
    assert late.calls == [({}, ALARM_STATE_CHANGE)]


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)


def test_eventbridge_pattern_rule_delivers_matching_events(aws) -> None:
    events, sqs = aws
    bus = EventBridgeBus(events)
    assert isinstance(bus, EventBus)
    url = sqs.create_queue(QueueName="retrain")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus.put_rule(ALARM_RULE)
    bus.put_targets(ALARM_RULE.name, [Target("queue", queue_arn, {"pipeline": "fraud"})])
    assert bus.list_rules() == [ALARM_RULE]
    ids = bus.put_events([alarm_event("OK"), alarm_event("ALARM"), alarm_event("ALARM", "clv-drift")])
    assert len(ids) == 3
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    # moto delivers the event itself (EventBridge would deliver the constant Input): check both halves
    (body,) = [json.loads(m["Body"]) for m in messages]
    assert (body["detail"]["alarmName"], body["detail"]["state"]["value"]) == ("fraud-score-drift", "ALARM")
    (target,) = events.list_targets_by_rule(Rule=ALARM_RULE.name)["Targets"]
    assert json.loads(target["Input"]) == {"pipeline": "fraud"}


def test_eventbridge_binds_no_action_and_lists_no_activity(aws) -> None:
    events, _ = aws
    bus = EventBridgeBus(events)
    mark = bus.activity_mark()
    bus.register_action("start-pipeline", Recorder())  # EventBridge invokes the target's ARN itself
    bus.put_events([alarm_event("ALARM")])
    assert bus.activity_since(mark) == BusActivity()


def test_eventbridge_scheduled_rule_starts_a_sagemaker_pipeline_with_parameters(aws) -> None:
    events, _ = aws
    bus = EventBridgeBus(events)
    pipeline_arn = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/cdp-fraud"
    weekly = Rule("weekly-retrain", schedule_expression="rate(7 days)")
    bus.put_rule(weekly)
    bus.put_targets(
        "weekly-retrain", [Target("fraud", pipeline_arn, {"TrainingDays": 365, "Model": "fraud"})]
    )
    assert bus.list_rules() == [weekly]
    (target,) = events.list_targets_by_rule(Rule="weekly-retrain")["Targets"]
    assert target["Arn"] == pipeline_arn
    assert target["SageMakerPipelineParameters"] == {
        "PipelineParameterList": [
            {"Name": "Model", "Value": "fraud"},
            {"Name": "TrainingDays", "Value": "365"},
        ]
    }
