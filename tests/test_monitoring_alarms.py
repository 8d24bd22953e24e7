"""Embedded alarm evaluator: M-of-N, missing data, state sequences, state-change events, durability."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cdp.alarms.evaluation import decide
from cdp.alarms.local import SqliteAlarmService
from cdp.alarms.port import AlarmNotFound, AlarmState, ComparisonOperator, MetricAlarm, TreatMissingData
from cdp.events.local import SqliteEventBus
from cdp.events.patterns import matches
from cdp.metrics import MetricDatum, MetricQuery, Statistic
from cdp.metrics.local import SqliteMetricsStore

NS = "CDP/Monitoring"
PERIOD = 300
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()
B, G, M = 0.5, 0.0, None  # breaching, good, missing (threshold 0.25, GreaterThanThreshold)
OK, ALARM, INSUFFICIENT = AlarmState.OK, AlarmState.ALARM, AlarmState.INSUFFICIENT_DATA


def alarm(
    n: int = 3, m: int | None = None, treat: TreatMissingData = TreatMissingData.MISSING
) -> MetricAlarm:
    return MetricAlarm(
        name="fraud-score-drift",
        metric=MetricQuery(NS, "psi", Statistic.MAXIMUM, PERIOD, {"model": "fraud"}),
        threshold=0.25,
        comparison=ComparisonOperator.GREATER_THAN,
        evaluation_periods=n,
        datapoints_to_alarm=m,
        treat_missing_data=treat,
    )


@pytest.mark.parametrize(
    ("values", "m", "treat", "expected"),
    [
        ((B, B, B), 3, TreatMissingData.MISSING, ALARM),
        ((B, G, B), 3, TreatMissingData.MISSING, OK),
        ((B, G, B), 2, TreatMissingData.MISSING, ALARM),
        ((G, G, B), 2, TreatMissingData.MISSING, OK),
        ((M, M, M), 2, TreatMissingData.MISSING, INSUFFICIENT),
        ((M, M, M), 2, TreatMissingData.IGNORE, None),
        ((M, M, M), 2, TreatMissingData.BREACHING, ALARM),
        ((M, M, M), 2, TreatMissingData.NOT_BREACHING, OK),
        ((B, M, M), 2, TreatMissingData.MISSING, OK),
        ((B, M, M), 2, TreatMissingData.IGNORE, OK),
        ((B, M, M), 2, TreatMissingData.BREACHING, ALARM),
        ((B, M, M), 2, TreatMissingData.NOT_BREACHING, OK),
        ((B, M, B), 2, TreatMissingData.MISSING, ALARM),
        ((G, M, M), 1, TreatMissingData.BREACHING, ALARM),
    ],
)
def test_decide_m_of_n_with_missing_data(values, m, treat, expected) -> None:
    assert decide(alarm(3, m, treat), values).state == expected


@pytest.mark.parametrize(
    ("comparison", "value", "breaches"),
    [
        (ComparisonOperator.GREATER_THAN, 0.25, False),
        (ComparisonOperator.GREATER_THAN_OR_EQUAL, 0.25, True),
        (ComparisonOperator.LESS_THAN, 0.25, False),
        (ComparisonOperator.LESS_THAN_OR_EQUAL, 0.25, True),
        (ComparisonOperator.LESS_THAN, 0.1, True),
    ],
)
def test_comparison_at_the_threshold(comparison, value, breaches) -> None:
    assert comparison.breaches(value, 0.25) is breaches


def test_definition_is_validated() -> None:
    with pytest.raises(ValueError, match="datapoints_to_alarm"):
        alarm(3, 4)
    with pytest.raises(ValueError, match="evaluation_periods"):
        alarm(0)
    with pytest.raises(ValueError, match="expected 3 values"):
        decide(alarm(3), (B, B))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path):
    clock = Clock(T0)
    metrics = SqliteMetricsStore(tmp_path / "metrics.sqlite")
    bus = SqliteEventBus(tmp_path / "events.sqlite", clock=clock)
    evaluator = SqliteAlarmService(tmp_path / "alarms.sqlite", metrics, bus, clock=clock)
    yield clock, metrics, evaluator, bus
    for store in (metrics, evaluator, bus):
        store.close()


def run(clock: Clock, metrics: SqliteMetricsStore, evaluator: SqliteAlarmService, definition, values) -> list:
    """Put the alarm; publish one value per period (None: nothing), evaluate after each period; the
    states seen."""
    evaluator.put_alarm(definition)
    seen = []
    for value in values:
        if value is not None:
            moment = datetime.fromtimestamp(clock.now + 10, UTC)
            metrics.put_metric_data([MetricDatum(NS, "psi", value, moment, {"model": "fraud"})])
        clock.now += PERIOD
        evaluator.evaluate()
        seen.append(evaluator.state(definition.name))
    return seen


def test_state_sequence_two_of_three(world) -> None:
    clock, metrics, evaluator, _ = world
    definition = alarm(3, 2)
    with pytest.raises(AlarmNotFound):
        evaluator.state(definition.name)
    evaluator.put_alarm(definition)
    assert evaluator.state(definition.name) is INSUFFICIENT
    seen = run(clock, metrics, evaluator, definition, [G, B, G, B, B, G, G, M, M, M])
    assert seen == [OK, OK, OK, ALARM, ALARM, ALARM, OK, OK, OK, INSUFFICIENT]


def test_m_of_n_damps_a_flapping_metric(world) -> None:
    clock, metrics, evaluator, bus = world
    flapping = [B, G] * 6
    one_of_one = run(clock, metrics, evaluator, alarm(1, 1), flapping)
    assert one_of_one == [ALARM, OK] * 6
    changes = [d for d in bus_events(bus) if d["detail"]["state"]["value"] == "ALARM"]
    assert len(changes) == 6


def bus_events(bus: SqliteEventBus) -> list[dict]:
    return bus.events(source="aws.cloudwatch")


def test_three_of_three_stays_ok_on_the_same_flapping(world) -> None:
    clock, metrics, evaluator, _ = world
    assert set(run(clock, metrics, evaluator, alarm(3, 3), [B, G] * 6)) == {OK}


def test_state_change_event_has_the_cloudwatch_shape(world) -> None:
    clock, metrics, evaluator, bus = world
    run(clock, metrics, evaluator, alarm(1, 1), [B])
    (event,) = bus_events(bus)
    assert event["source"] == "aws.cloudwatch"
    assert event["detail-type"] == "CloudWatch Alarm State Change"
    assert event["resources"] == ["arn:aws:cloudwatch:local:000000000000:alarm:fraud-score-drift"]
    detail = event["detail"]
    assert detail["alarmName"] == "fraud-score-drift"
    assert detail["state"]["value"] == "ALARM"
    assert detail["previousState"]["value"] == "INSUFFICIENT_DATA"
    metric = detail["configuration"]["metrics"][0]["metricStat"]
    assert metric["metric"] == {"namespace": NS, "name": "psi", "dimensions": {"model": "fraud"}}
    assert (metric["period"], metric["stat"]) == (PERIOD, "Maximum")
    assert matches(
        {
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {"state": {"value": ["ALARM"]}},
        },
        event,
    )


def test_no_event_without_a_change(world) -> None:
    clock, metrics, evaluator, bus = world
    run(clock, metrics, evaluator, alarm(1, 1), [B, B, B])
    assert len(bus_events(bus)) == 1


def test_state_survives_a_restart(tmp_path, world) -> None:
    clock, metrics, evaluator, bus = world
    run(clock, metrics, evaluator, alarm(1, 1), [B])
    restarted = SqliteAlarmService(tmp_path / "alarms.sqlite", metrics, bus, clock=clock)
    assert restarted.state("fraud-score-drift") is ALARM
    assert restarted.get_alarm("fraud-score-drift") == alarm(1, 1)  # the definition survived too
    run(clock, metrics, restarted, alarm(1, 1), [B])
    assert len(bus_events(bus)) == 1  # the restart did not re-announce the ALARM
    restarted.close()


def test_only_complete_periods_are_evaluated(world) -> None:
    clock, metrics, evaluator, _ = world
    # a breaching value in the period still running is not looked at yet
    metrics.put_metric_data(
        [MetricDatum(NS, "psi", B, datetime.fromtimestamp(T0 + 10, UTC), {"model": "fraud"})]
    )
    clock.now = T0 + 200
    assert evaluator.period_values(alarm(1, 1)) == (None,)
    clock.now = T0 + PERIOD
    assert evaluator.period_values(alarm(1, 1)) == (B,)


def test_a_drop_in_the_second_run_of_a_period_raises_the_labelled_pr_auc_alarm(world) -> None:
    """Two monitor runs within one period (a fast demo): the ratio 1.04, then 0.14. The alarm watches the
    period's worst run, so the drop is not hidden behind the better one."""
    from monitoring.rules import LABELLED_PR_AUC_RATIO, NAMESPACE, drift_alarms

    clock, metrics, evaluator, _ = world
    (definition,) = [a for a in drift_alarms("cdp-fraud") if a.metric.name == LABELLED_PR_AUC_RATIO]
    assert definition.metric.statistic is Statistic.MINIMUM
    evaluator.put_alarm(definition)
    for value, offset in ((1.04, 10), (0.14, 200)):
        moment = datetime.fromtimestamp(clock.now + offset, UTC)
        metrics.put_metric_data(
            [MetricDatum(NAMESPACE, LABELLED_PR_AUC_RATIO, value, moment, {"Model": "cdp-fraud"})]
        )
    clock.now += PERIOD
    evaluator.evaluate()
    assert evaluator.state(definition.name) is ALARM
    drift = {a.metric.name: a.metric.statistic for a in drift_alarms("cdp-fraud")}
    assert set(drift.values()) == {Statistic.MAXIMUM, Statistic.MINIMUM}  # drift above: the period's highest
