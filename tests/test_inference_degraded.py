"""Degraded mode: the documented fraud rules, the DegradedDecisions counter and its alarm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cdp.alarms.port import AlarmState
from cdp.backends import Backends
from cdp.metrics.port import MetricQuery, Statistic
from cdp.settings import Settings
from inference.degraded import (
    DEGRADED_DECISIONS,
    RULES,
    SERVING_NAMESPACE,
    DegradedDecisions,
    rules_batch,
    rules_score,
)
from monitoring.rules import degraded_alarm

QUIET = {
    "amount_cents": 1_500, "amount_mean_30d": 2_000.0, "is_foreign": False, "is_new_state_or_country": False,
    "is_online": False, "online_count_24h": 0, "has_bad_credential": False, "bad_credential_count_24h": 0,
}  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "change"),
    [
        ("amount_far_above_card_mean", {"amount_cents": 60_000, "amount_mean_30d": 5_000.0}),
        (
            "new_country_high_amount",
            {"is_foreign": True, "is_new_state_or_country": True, "amount_cents": 25_000},
        ),
        ("card_not_present_burst", {"is_online": True, "online_count_24h": 5}),
        ("repeated_bad_credentials", {"has_bad_credential": True, "bad_credential_count_24h": 2}),
    ],
)
def test_each_rule_fires_on_its_pattern_only(rule, change):
    assert rules_score(QUIET).probability == 0.0 and rules_score(QUIET).reasons == []
    score = rules_score({**QUIET, **change})
    assert score.reasons == [(rule, 1.0)] and score.probability == 0.5  # one rule: at the threshold


def test_rules_combine_and_missing_features_never_fire():
    everything = {
        **QUIET, "amount_cents": 90_000, "amount_mean_30d": 1_000.0, "is_foreign": True,
        "is_new_state_or_country": True, "is_online": True, "online_count_24h": 9,
        "has_bad_credential": True, "bad_credential_count_24h": 3,
    }  # fmt: skip
    score = rules_score(everything)
    assert [name for name, _ in score.reasons] == [r.name for r in RULES]
    assert score.probability == pytest.approx(4 / 5)
    assert rules_score({}).probability == 0.0  # no features (first event of a card): no rule fires
    assert rules_score({**QUIET, "amount_cents": 90_000, "amount_mean_30d": None}).reasons == []
    batch = rules_batch([QUIET, everything])
    assert (batch.model, batch.model_version, batch.threshold) == ("rules", 0, 0.5)


def test_counts_are_published_per_model_at_most_every_period_and_alarm(tmp_path):
    backends = Backends(Settings(home=tmp_path / "home"))
    clock = [0.0]
    counter = DegradedDecisions(lambda: backends.metrics, flush_seconds=60, clock=lambda: clock[0])
    counter.count("cdp-fraud", 3)
    counter.count("cdp-fraud", 2)
    query = MetricQuery(SERVING_NAMESPACE, DEGRADED_DECISIONS, Statistic.SUM, 60, {"Model": "cdp-fraud"})
    now = datetime.now(UTC)
    window = (now - timedelta(hours=1), now + timedelta(hours=1))
    assert backends.metrics.get_statistics(query, *window) == []  # not yet: no metrics write per request
    clock[0] = 61.0
    counter.count("cdp-fraud", 1)
    points = backends.metrics.get_statistics(query, *window)
    assert sum(p.value for p in points) == 6
    alarm = degraded_alarm("cdp-fraud", period_seconds=60)
    assert not alarm.name.startswith("cdp-fraud-drift-")  # not a retraining trigger
    alarms = backends.alarms
    alarms.put_alarm(alarm)
    period_end = max(p.timestamp for p in points) + timedelta(seconds=60)  # the published period, complete
    alarms.evaluate(now=period_end, names=[alarm.name])
    assert alarms.state(alarm.name) == AlarmState.ALARM


def test_a_failing_metrics_store_never_fails_a_decision():
    def broken():  # noqa: ANN202
        raise OSError("metrics down")

    counter = DegradedDecisions(broken, flush_seconds=0)
    counter.count("cdp-fraud", 2)  # logged, not raised
    assert counter.total["cdp-fraud"] == 2
