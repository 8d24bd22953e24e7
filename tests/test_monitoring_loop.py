"""The monitor run and its local target actions, on the platform of the drift tests (a fraud champion
trained by the local pipeline executor, scored data in the lake).

Checks: stable data leaves the drift alarms OK and starts nothing; injected drift puts both alarms in
ALARM and the retrain rule's target runs exactly once (a real pipeline run registering a new version,
then the model-package event reaches the promotion rule); after the alarms recover and fire again within
the cooldown no second pipeline starts; the start-pipeline action on its own registers a version and puts
SageMaker's model-package event in the shape the promotion rule matches.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cdp.events import matches
from cdp.events.local import SqliteEventBus
from cdp.metrics import MetricQuery, Statistic
from monitoring.actions import Timeline, local_actions, start_pipeline_action
from monitoring.drift import DriftSettings
from monitoring.loop import run_monitor
from monitoring.rules import (
    FEATURE_DRIFT_SHARE,
    LABELLED_PR_AUC,
    LABELLED_PR_AUC_RATIO,
    MODEL_PACKAGE_STATE_CHANGE,
    NAMESPACE,
    PROMOTE_ON_REGISTER,
    SCORE_PSI,
    DriftThresholds,
    model_package_pattern,
    retrain_rule_name,
)
from tests.test_monitoring_drift import SHIFTED_START, pipeline_runner, shared_platform, write_scored

pytestmark = pytest.mark.slow  # a pipeline run per test, on a platform built by another pipeline run

ALARMS = ("cdp-fraud-drift-FeatureDriftShare", "cdp-fraud-drift-ScorePSI")
PERFORMANCE_ALARM = "cdp-fraud-drift-LabelledPrAucRatio"
RETRAIN = retrain_rule_name("cdp-fraud")
DEGRADED_ALARM = "cdp-fraud-degraded-DegradedDecisions"  # the champion decided: no rules-made decisions
SETTINGS = DriftSettings(sample_size=1500, seed=3)
THRESHOLDS = DriftThresholds(feature_drift_share=0.3)  # the test data has only 3 monitored columns


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    return shared_platform(tmp_path_factory)


def _versions(backends) -> list[int]:
    return [v.version for v in backends.model_registry.list("cdp-fraud")]


def test_start_pipeline_action_registers_a_version_and_puts_the_model_package_event(platform, tmp_path):
    backends, scripts = platform
    bus = SqliteEventBus(tmp_path / "events.sqlite")
    timeline = Timeline()
    before = set(_versions(backends))
    action = start_pipeline_action(backends, bus, timeline, pipeline_runner(scripts))
    action({"pipeline": "fraud", "model_name": "cdp-fraud", "reason": "test"}, {"detail-type": "test"})

    (new,) = set(_versions(backends)) - before
    assert backends.model_registry.get("cdp-fraud", new).status == "PendingManualApproval"
    assert backends.model_registry.get("cdp-fraud", new).registered_by == "ml-pipeline"  # the service
    (event,) = bus.events("aws.sagemaker")
    detail = event["detail"]
    assert event["detail-type"] == MODEL_PACKAGE_STATE_CHANGE
    assert detail["ModelPackageGroupName"] == "cdp-fraud" and detail["ModelPackageVersion"] == new
    assert detail["ModelPackageArn"].endswith(f":model-package/cdp-fraud/{new}")
    assert detail["ModelApprovalStatus"] == "PendingManualApproval"
    assert matches(model_package_pattern("PendingManualApproval"), event)
    assert any(f"registered cdp-fraud v{new}" in e.what for e in timeline.entries)


def test_drift_alarm_retrains_once_and_the_cooldown_holds_the_second_start(platform):
    backends, scripts = platform
    timeline = Timeline()
    actions = local_actions(backends, backends.event_bus, timeline, pipeline_runner(scripts))
    t0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def monitor(minutes: int, thresholds: DriftThresholds | None = None):
        return run_monitor(
            backends,
            now=t0 + timedelta(minutes=minutes),
            actions=actions,
            timeline=timeline,
            drift_settings=SETTINGS,
            thresholds=thresholds or THRESHOLDS,
        )

    stable = monitor(0)
    assert stable.alarm_states == {
        **dict.fromkeys(ALARMS, "OK"),
        PERFORMANCE_ALARM: "OK",
        DEGRADED_ALARM: "OK",
    }
    assert stable.metrics["cdp-fraud"][LABELLED_PR_AUC_RATIO] > 0.7
    assert stable.metrics["cdp-fraud"][FEATURE_DRIFT_SHARE] == 0.0
    assert stable.metrics["cdp-fraud"][SCORE_PSI] < 0.1 and stable.metrics["cdp-fraud"][LABELLED_PR_AUC] > 0.2
    assert [d for d in stable.deliveries if d["rule"] == RETRAIN] == []
    query = MetricQuery(NAMESPACE, FEATURE_DRIFT_SHARE, Statistic.MAXIMUM, 300, {"Model": "cdp-fraud"})
    (point,) = backends.metrics.get_statistics(query, t0 - timedelta(hours=1), t0 + timedelta(hours=1))
    assert point.value == 0.0
    versions = _versions(backends)
    champion = backends.model_registry.champion_version("cdp-fraud")

    write_scored(backends, SHIFTED_START, 20, 2000, seed=41, amount_factor=3.0, velocity_shift=3.0)
    drifted = monitor(5)
    # the gate never switches serving: a version that passes it waits in shadow as the challenger
    assert backends.model_registry.champion_version("cdp-fraud") == champion
    assert {name: drifted.alarm_states[name] for name in ALARMS} == dict.fromkeys(ALARMS, "ALARM")
    assert (
        drifted.metrics["cdp-fraud"][FEATURE_DRIFT_SHARE] > 0.3
        and drifted.metrics["cdp-fraud"][SCORE_PSI] > 0.25
    )
    retrain = [d["status"] for d in drifted.deliveries if d["rule"] == RETRAIN]
    assert retrain.count("invoked") == 1  # two alarms fired; the second start is held by the cooldown
    assert _versions(backends) == [*versions, versions[-1] + 1]
    pending = [e for e in drifted.events_put if e["state"] == "PendingManualApproval"]
    assert [e["subject"].rsplit("/", 1)[-1] for e in pending] == [str(versions[-1] + 1)]
    # the promotion gate ran as its own service identity (a failed authentication would read "failed")
    assert [d["status"] for d in drifted.deliveries if d["rule"] == PROMOTE_ON_REGISTER] == ["invoked"]
    assert {r.actor for r in backends.audit.records() if r.action in ("model-approve", "model-reject")} <= {
        "tester", "promotion-gate",
    }  # fmt: skip
    assert {c["current"] for c in drifted.alarm_changes} == {"ALARM"}
    said = [entry["what"] for entry in drifted.timeline]
    first_alarm = next(i for i, what in enumerate(said) if what.startswith("alarm ") and "-> ALARM" in what)
    started = next(i for i, what in enumerate(said) if what.startswith("start-pipeline:"))
    assert first_alarm < started  # the timeline reads in causal order: alarm, then the retraining it started

    recovered = monitor(10, DriftThresholds(feature_drift_share=1.0, score_psi=1e6))
    assert {name: recovered.alarm_states[name] for name in ALARMS} == dict.fromkeys(ALARMS, "OK")
    again = monitor(15)
    assert {name: again.alarm_states[name] for name in ALARMS} == dict.fromkeys(ALARMS, "ALARM")
    assert [d["status"] for d in again.deliveries if d["rule"] == RETRAIN] == ["suppressed", "suppressed"]
    assert len(_versions(backends)) == len(versions) + 1
    assert any("held by its cooldown" in entry["what"] for entry in again.timeline)
    if backends.model_registry.challenger_version("cdp-fraud") is not None:  # no shadow events yet: waits
        assert any(e["what"].startswith("shadow comparison: ") for e in again.timeline)
        assert [d["outcome"] for d in again.shadow] == ["shadow-continues"]
    assert backends.model_registry.champion_version("cdp-fraud") == champion
    assert all(set(entry) == {"at", "what"} for entry in again.timeline)


def test_frauds_the_champion_cannot_see_raise_the_performance_alarm_alone_and_retrain(platform):
    """(Runs last: it moves the scored data 500 days on.) Concept drift: the same inputs, frauds that no
    longer follow them. No feature or score drift; the
    champion's labelled PR-AUC falls below 70% of the one it was registered with, and that alone starts
    the retraining."""
    backends, scripts = platform
    timeline = Timeline()
    actions = local_actions(backends, backends.event_bus, timeline, pipeline_runner(scripts))
    versions = _versions(backends)
    write_scored(backends, SHIFTED_START + timedelta(days=500), 20, 2000, seed=43, shuffle_labels=True)
    run = run_monitor(
        backends,
        now=datetime(2026, 9, 1, 12, 0, tzinfo=UTC),
        actions=actions,
        timeline=timeline,
        drift_settings=SETTINGS,
        thresholds=THRESHOLDS,
        retrain_cooldown_seconds=0,
    )
    metrics = run.metrics["cdp-fraud"]
    assert metrics[LABELLED_PR_AUC_RATIO] < 0.7 and metrics[FEATURE_DRIFT_SHARE] <= 0.3
    assert run.alarm_states[PERFORMANCE_ALARM] == "ALARM"
    assert [c["alarm"] for c in run.alarm_changes if c["current"] == "ALARM"] == [PERFORMANCE_ALARM]
    assert [d["status"] for d in run.deliveries if d["rule"] == RETRAIN] == ["invoked"]
    assert len(_versions(backends)) == len(versions) + 1
    said = " | ".join(entry["what"] for entry in run.timeline)
    assert "of the" in said and "it was registered with" in said
