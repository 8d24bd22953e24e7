"""The monitoring loop's wiring, defined once: drift alarms and the event rules that react to them.

The same definitions are installed on the local event bus (`install_rules`), synthesised into the CDK app
(EventBridge rules + CloudWatch alarms in `infra/`) and matched against real AWS event shapes in the tests:

    drift metric (CDP/Monitoring) --alarm--> "CloudWatch Alarm State Change" (ALARM)
        --rule <model>-retrain-on-drift--> start the model's pipeline (cooldown: no storm of runs)
    pipeline registers a version --> "SageMaker Model Package State Change" (PendingManualApproval)
        --rule cdp-promote-on-register--> promotion gate (CodeBuild post_build: `cdp promote MODEL`)
    promotion approves it --> "SageMaker Model Package State Change" (Approved)
        --rule cdp-deploy-on-approval--> serving takes the new champion
    rate(7 days) --rule cdp-retrain-weekly--> start every pipeline (periodic retraining)

Target actions are names: on the local bus, callables registered under these names; in AWS, the CDK app
maps them to a SageMaker pipeline target (`start-pipeline`) and CodeBuild projects (`promote-model`,
`deploy-champion`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdp.alarms.port import ComparisonOperator, MetricAlarm, TreatMissingData
from cdp.events.port import ALARM_STATE_CHANGE, EventBus, Rule, Target
from cdp.metrics.port import MetricQuery, Statistic
from inference.degraded import DEGRADED_DECISIONS, SERVING_NAMESPACE
from inference.slo_metrics import API_ERROR_RATE, API_LATENCY_P99, EVENT_TO_ALERT_P99, SLO_NAMESPACE

NAMESPACE = "CDP/Monitoring"
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"

# model registry name -> pipeline name (pipelines/<name>)
PIPELINES: Mapping[str, str] = {"cdp-fraud": "fraud", "cdp-clv": "clv", "cdp-segmentation": "segmentation"}

START_PIPELINE = "start-pipeline"
PROMOTE_MODEL = "promote-model"
DEPLOY_CHAMPION = "deploy-champion"

PROMOTE_ON_REGISTER = "cdp-promote-on-register"
DEPLOY_ON_APPROVAL = "cdp-deploy-on-approval"
RETRAIN_WEEKLY = "cdp-retrain-weekly"

# Metric names the drift job publishes (dimension: Model=<registry name>).
FEATURE_DRIFT_SHARE = "FeatureDriftShare"  # share of monitored features whose drift test fails, 0..1
SCORE_PSI = "ScorePSI"  # population stability index of the model's score, reference vs window
LABELLED_PR_AUC = "LabelledPrAuc"  # delayed-label performance on windows whose labels are in
# ... as a share of the PR-AUC the champion had on its test split when it was registered (concept drift:
# the model's world changed even where its inputs look alike); published only with enough labels in.
LABELLED_PR_AUC_RATIO = "LabelledPrAucRatio"
LABEL_SCORED_MODELS = ("cdp-fraud",)  # models whose served scores get labels later (the stream's)


@dataclass(frozen=True)
class DriftThresholds:
    """When the drift alarms fire. Banks read PSI as < 0.1 stable, 0.1-0.25 watch, > 0.25 shift."""

    feature_drift_share: float = 0.3
    score_psi: float = 0.25
    labelled_pr_auc_ratio: float = 0.7  # alarm below: the champion lost 30% of its evaluated PR-AUC
    period_seconds: int = 300
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1


def alarm_name(model_name: str, metric_name: str) -> str:
    """`cdp-fraud-drift-ScorePSI`: every drift alarm of a model starts with `<model>-drift-`."""
    return f"{model_name}-drift-{metric_name}"


def drift_alarms(model_name: str, thresholds: DriftThresholds | None = None) -> list[MetricAlarm]:
    """The model's drift alarms: feature drift share and score PSI above their thresholds; for a model
    whose scores get labels later, also its labelled PR-AUC ratio below its threshold."""
    t = thresholds or DriftThresholds()
    alarms = []
    above, below = ComparisonOperator.GREATER_THAN, ComparisonOperator.LESS_THAN
    checks = [
        (FEATURE_DRIFT_SHARE, t.feature_drift_share, "share of features drifted", above),
        (SCORE_PSI, t.score_psi, "PSI of the score", above),
    ]
    if model_name in LABEL_SCORED_MODELS:
        checks.append(
            (
                LABELLED_PR_AUC_RATIO,
                t.labelled_pr_auc_ratio,
                "labelled PR-AUC as a share of the champion's evaluated PR-AUC",
                below,
            )
        )
    for metric_name, threshold, what, comparison in checks:
        side = "above" if comparison is above else "below"
        alarms.append(
            MetricAlarm(
                name=alarm_name(model_name, metric_name),
                metric=MetricQuery(
                    namespace=NAMESPACE,
                    name=metric_name,
                    dimensions={"Model": model_name},
                    # the period's worst run: its highest drift, its lowest PR-AUC ratio (two monitor runs
                    # in one period must not hide a drop behind the better one)
                    statistic=Statistic.MAXIMUM if comparison is above else Statistic.MINIMUM,
                    period_seconds=t.period_seconds,
                ),
                threshold=threshold,
                comparison=comparison,
                evaluation_periods=t.evaluation_periods,
                datapoints_to_alarm=t.datapoints_to_alarm,
                treat_missing_data=TreatMissingData.MISSING,
                description=f"{model_name}: {what} {side} {threshold:g} (monitor run, reference = champion's "
                f"training snapshot)",
            )
        )
    return alarms


def degraded_alarm(model_name: str, period_seconds: int = 300) -> MetricAlarm:
    """`cdp-fraud-degraded-DegradedDecisions`: any fraud decision taken by the degraded rules (no champion,
    or the model failing) in a period. Not a drift alarm (its name does not start with `<model>-drift-`),
    so it starts no retraining: it calls for an operator."""
    return MetricAlarm(
        name=f"{model_name}-degraded-{DEGRADED_DECISIONS}",
        metric=MetricQuery(
            namespace=SERVING_NAMESPACE,
            name=DEGRADED_DECISIONS,
            dimensions={"Model": model_name},
            statistic=Statistic.SUM,
            period_seconds=period_seconds,
        ),
        threshold=0.0,
        comparison=ComparisonOperator.GREATER_THAN,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data=TreatMissingData.NOT_BREACHING,
        description=f"{model_name}: fraud decisions taken by the degraded rules (no champion, or it failed)",
    )


def model_alarms(model_name: str, thresholds: DriftThresholds | None = None) -> list[MetricAlarm]:
    """Every alarm a model has: its drift alarms and, for a model scored on the live stream, the
    degraded-decisions alarm (what the monitor loop puts and the CDK app synthesises)."""
    alarms = drift_alarms(model_name, thresholds)
    if model_name in LABEL_SCORED_MODELS:
        alarms.append(degraded_alarm(model_name))
    return alarms


# -- service-level objectives (monitoring/slo.py): alarms that call for an operator, never a retraining ------
SLO_ALARM_PREFIX = "cdp-slo-"
BATCH_FRESHNESS = "BatchFreshnessSeconds"  # age of the batch lake's newest landing, published by the monitor
STREAM_FRESHNESS = "StreamFreshnessSeconds"  # age of the stream's newest scored landing
FAST_BURN = 14.4  # an error rate this many times the budget spends 2% of a 30-day budget in an hour


@dataclass(frozen=True)
class SloThresholds:
    """The objectives the SLO alarms watch (`monitoring.slo.Objectives.thresholds()` from the settings)."""

    event_to_alert_seconds: float = 5.0
    api_availability_target: float = 0.999
    api_latency_ms: float = 300.0
    batch_freshness_seconds: float = 26 * 3600
    stream_freshness_seconds: float = 15 * 60


def slo_alarms(t: SloThresholds | None = None) -> list[MetricAlarm]:
    """One alarm per objective, each on a sustained breach (3 of 3 five-minute periods; freshness: the
    latest check). Their names start with `cdp-slo-`, which no rule retrains on."""
    t = t or SloThresholds()
    above = ComparisonOperator.GREATER_THAN

    def alarm(name: str, metric: str, stat: Statistic, threshold: float, what: str, periods: int = 3,
              period: int = 300) -> MetricAlarm:  # fmt: skip
        return MetricAlarm(
            name=SLO_ALARM_PREFIX + name,
            metric=MetricQuery(SLO_NAMESPACE, metric, stat, period),
            threshold=threshold,
            comparison=above,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=TreatMissingData.NOT_BREACHING if periods > 1 else TreatMissingData.MISSING,
            description=what,
        )

    budget = 1 - t.api_availability_target
    return [
        alarm("event-to-alert-latency", EVENT_TO_ALERT_P99, Statistic.MAXIMUM, t.event_to_alert_seconds,
              f"stream p99 event-to-alert latency above {t.event_to_alert_seconds:g} s for 15 minutes"),
        alarm("api-availability", API_ERROR_RATE, Statistic.AVERAGE, FAST_BURN * budget,
              f"API 5xx rate above {FAST_BURN:g}x the error budget ({budget:.3%}) for 15 minutes"),
        alarm("api-latency-p99", API_LATENCY_P99, Statistic.MAXIMUM, t.api_latency_ms,
              f"API p99 latency above {t.api_latency_ms:g} ms for 15 minutes"),
        alarm("batch-freshness", BATCH_FRESHNESS, Statistic.MINIMUM, t.batch_freshness_seconds,
              f"the batch lake's newest landing older than {t.batch_freshness_seconds / 3600:g} h", 1, 3600),
        alarm("stream-freshness", STREAM_FRESHNESS, Statistic.MINIMUM, t.stream_freshness_seconds,
              f"the stream's newest landing older than {t.stream_freshness_seconds / 60:g} min", 1, 300),
    ]  # fmt: skip


def retrain_on_drift_pattern(model_names: tuple[str, ...] = tuple(PIPELINES)) -> dict[str, Any]:
    """Any of the models' drift alarms going into ALARM."""
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": [ALARM_STATE_CHANGE],
        "detail": {
            "alarmName": [{"prefix": f"{name}-drift-"} for name in model_names],
            "state": {"value": ["ALARM"]},
        },
    }


def model_package_pattern(status: str, model_names: tuple[str, ...] = tuple(PIPELINES)) -> dict[str, Any]:
    """A model package of one of our groups entering `status` (SageMaker's own event)."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": [MODEL_PACKAGE_STATE_CHANGE],
        "detail": {"ModelPackageGroupName": list(model_names), "ModelApprovalStatus": [status]},
    }


def retrain_rule_name(model_name: str) -> str:
    """`cdp-fraud-retrain-on-drift`: one drift rule per model, each with its own pipeline target."""
    return f"{model_name}-retrain-on-drift"


def loop_rules(
    retrain_cooldown_seconds: float = 6 * 3600, schedule: str = "rate(7 days)"
) -> list[tuple[Rule, list[Target]]]:
    """Every rule of the loop with its targets."""
    rules: list[tuple[Rule, list[Target]]] = [
        (
            Rule(
                retrain_rule_name(model),
                event_pattern=retrain_on_drift_pattern((model,)),
                description=f"A drift alarm of {model} went into ALARM: retrain it",
            ),
            [
                Target(
                    id=f"retrain-{pipeline}",
                    action=START_PIPELINE,
                    parameters={"pipeline": pipeline, "model_name": model, "reason": "drift alarm"},
                    cooldown_seconds=retrain_cooldown_seconds,
                )
            ],
        )
        for model, pipeline in PIPELINES.items()
    ]
    weekly_targets = [
        Target(
            id=f"weekly-{pipeline}",
            action=START_PIPELINE,
            parameters={"pipeline": pipeline, "model_name": model, "reason": "scheduled retraining"},
        )
        for model, pipeline in PIPELINES.items()
    ]
    rules += [
        (
            Rule(
                PROMOTE_ON_REGISTER,
                event_pattern=model_package_pattern("PendingManualApproval"),
                description="A pipeline registered a candidate: run the promotion gate",
            ),
            [Target(id="promotion-gate", action=PROMOTE_MODEL)],
        ),
        (
            Rule(
                DEPLOY_ON_APPROVAL,
                event_pattern=model_package_pattern("Approved"),
                description="A version was approved: serving takes the new champion",
            ),
            [Target(id="deploy", action=DEPLOY_CHAMPION)],
        ),
        (
            Rule(RETRAIN_WEEKLY, schedule_expression=schedule, description="Periodic retraining"),
            weekly_targets,
        ),
    ]
    return rules


def install_rules(bus: EventBus, rules: list[tuple[Rule, list[Target]]] | None = None) -> list[str]:
    """Put the loop's rules and targets on `bus` (idempotent); returns the rule names."""
    names = []
    for rule, targets in rules if rules is not None else loop_rules():
        bus.put_rule(rule)
        bus.put_targets(rule.name, targets)
        names.append(rule.name)
    return names
