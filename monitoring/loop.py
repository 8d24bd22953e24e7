"""The monitor run (`cdp monitor run`): drift and delayed-label performance -> metrics -> alarms -> events.

First each model's challenger, if any, is judged on its shadow events (`switch_challengers`: rejected,
switched by the approval policy, or left for a person).
Then for each model: run the drift job, measure labelled performance (fraud), publish FeatureDriftShare,
ScorePSI and LabelledPrAuc (namespace and names from `monitoring.rules`, dimension Model). Then put the
models' drift alarms (idempotently, as the rules) and have them evaluated. The same steps run on every
backend; the ports decide who does the work:
- embedded: our evaluator decides each alarm's state and puts CloudWatch's "Alarm State Change" event on
  the local bus, whose rules run their targets in this process at once: a drift ALARM starts the
  retraining pipeline (at most once per cooldown), whose new version triggers the promotion gate, which
  makes it the challenger (scored in shadow; a later run's shadow comparison and approval policy switch
  it, and the Approved event triggers the deployment); the run lists the events put and deliveries made;
- AWS: CloudWatch evaluates the alarms by itself and EventBridge runs the same rules on the real targets;
  the run reports the alarms' states and the changes seen since the last read (no events or deliveries
  of its own to list).

The alarms are evaluated at the end of the period holding `now`: the datapoints just published belong
to that period, and a batch job cannot wait for it to close.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdp.metrics.port import MetricDatum
from monitoring.actions import Timeline, local_actions, switch_challengers
from monitoring.drift.job import SCORED_MODELS, DriftSettings, run_drift_job
from monitoring.drift.sources import DriftSourceError
from monitoring.performance import ALERT_BUDGET, labelled_performance
from monitoring.rules import (
    FEATURE_DRIFT_SHARE,
    LABELLED_PR_AUC,
    LABELLED_PR_AUC_RATIO,
    NAMESPACE,
    SCORE_PSI,
    DriftThresholds,
    install_rules,
    loop_rules,
    model_alarms,
)

if TYPE_CHECKING:
    from cdp.alarms.port import StateChange
    from cdp.backends import Backends
    from cdp.events.port import TargetAction


@dataclass
class MonitorRun:
    """Everything one monitor run did (`to_dict` for JSON output)."""

    started_at: datetime
    now: datetime
    reports: dict[str, dict[str, str]] = field(default_factory=dict)  # model -> {"json": path, "html": path}
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> metric name -> value
    performance: dict[str, dict[str, Any]] = field(default_factory=dict)
    alarm_states: dict[str, str] = field(default_factory=dict)
    alarm_changes: list[dict[str, Any]] = field(default_factory=list)
    events_put: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    skipped_models: dict[str, str] = field(default_factory=dict)  # model -> why no drift job ran
    shadow: list[dict[str, Any]] = field(default_factory=list)  # the challengers' shadow decisions
    timeline: list[dict[str, str]] = field(default_factory=list)
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "now": self.now.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "reports": self.reports,
            "metrics": self.metrics,
            "performance": self.performance,
            "alarm_states": self.alarm_states,
            "alarm_changes": self.alarm_changes,
            "events_put": self.events_put,
            "deliveries": self.deliveries,
            "skipped_models": self.skipped_models,
            "shadow": self.shadow,
            "timeline": self.timeline,
        }


def _period_end(moment: datetime, period_seconds: int) -> float:
    """Epoch seconds of the end of the period holding `moment`."""
    return (int(moment.timestamp()) // period_seconds + 1) * period_seconds


def _summary(envelope: Mapping[str, Any]) -> dict[str, Any]:
    detail = envelope.get("detail", {})
    what = detail.get("alarmName") or detail.get("ModelPackageArn") or ""
    state = (detail.get("state") or {}).get("value") or detail.get("ModelApprovalStatus")
    return {
        "id": envelope["id"],
        "source": envelope["source"],
        "detail-type": envelope["detail-type"],
        "subject": what,
        "state": state,
    }


def _publish(backends: Backends, model_name: str, values: Mapping[str, float], now: datetime) -> None:
    data = [
        MetricDatum(NAMESPACE, name, float(value), now, {"Model": model_name})
        for name, value in values.items()
    ]
    if data:
        backends.metrics.put_metric_data(data)


def run_monitor(
    backends: Backends,
    *,
    models: Sequence[str] = ("cdp-fraud",),
    now: datetime | None = None,
    actions: Mapping[str, TargetAction] | None = None,
    timeline: Timeline | None = None,
    drift_settings: DriftSettings | None = None,
    thresholds: DriftThresholds | None = None,
    retrain_cooldown_seconds: float = 6 * 3600,
    performance_lookback_months: int = 12,
    alert_budget: float = ALERT_BUDGET,
    performance_min_frauds: int = 30,
) -> MonitorRun:
    """One pass of the monitoring loop over `models` (see the module docstring).

    `actions` are the target actions by name for a bus that runs them in this process (default:
    `monitoring.actions.local_actions`, writing to `timeline`). `now` stamps the published metrics
    (default: the wall clock).
    """
    timeline = timeline or Timeline()
    thresholds = thresholds or DriftThresholds()
    started = datetime.now(UTC)
    now = now or started
    run = MonitorRun(started_at=started, now=now)
    bus = backends.event_bus
    install_rules(bus, loop_rules(retrain_cooldown_seconds=retrain_cooldown_seconds))
    for name, action in (actions or local_actions(backends, bus, timeline)).items():
        bus.register_action(name, action)
    mark = bus.activity_mark()
    timeline.add(f"monitor run started for {', '.join(models)}")
    run.shadow = [d.to_dict() for d in switch_challengers(backends, bus, timeline, models)]

    for model_name in models:
        values: dict[str, float] = {}
        try:
            result = run_drift_job(backends, model_name, settings=drift_settings)
        except DriftSourceError as error:
            run.skipped_models[model_name] = str(error)
            timeline.add(f"drift job skipped for {model_name}: {error}")
        else:
            run.reports[model_name] = {"json": str(result.json_path), "html": str(result.html_path)}
            values[FEATURE_DRIFT_SHARE] = result.share_drifted
            if result.score_psi is not None:
                values[SCORE_PSI] = result.score_psi
            drifted = [c.column for c in result.report.columns if c.drifted]
            psi = f"{result.score_psi:.3f}" if result.score_psi is not None else "n/a"
            timeline.add(
                f"drift job {model_name}: {len(drifted)}/{len(result.report.columns)} columns drifted "
                f"({', '.join(drifted) or 'none'}), score PSI {psi}; report {Path(result.folder).name}"
            )
        if model_name in SCORED_MODELS:
            values.update(
                _labelled_performance(
                    backends,
                    run,
                    model_name,
                    timeline,
                    lookback_months=performance_lookback_months,
                    budget=alert_budget,
                    min_frauds=performance_min_frauds,
                )
            )
        _publish(backends, model_name, values, now)
        run.metrics[model_name] = values

    _evaluate_alarms(backends, run, models, thresholds, now, timeline)
    activity = bus.activity_since(mark)
    run.events_put = [_summary(e) for e in activity.events]
    run.deliveries = [
        {"rule": d.rule_name, "target": d.target_id, "status": d.status, "error": d.error}
        for d in activity.deliveries
    ]
    for delivery in run.deliveries:
        if delivery["status"] == "suppressed":
            timeline.add(f"{delivery['rule']}: target {delivery['target']} held by its cooldown")
    run.finished_at = datetime.now(UTC)
    timeline.add("monitor run finished")
    run.timeline = [entry.to_dict() for entry in timeline.entries]
    return run


def _labelled_performance(
    backends: Backends,
    run: MonitorRun,
    model_name: str,
    timeline: Timeline,
    *,
    lookback_months: int,
    budget: float,
    min_frauds: int,
) -> dict[str, float]:
    """The champion's delayed-label performance: LabelledPrAuc, and LabelledPrAucRatio (its share of the
    PR-AUC the champion was registered with) once the window holds `min_frauds` fraud labels."""
    champion = backends.model_registry.champion(model_name)
    version = champion.version if champion is not None else None
    performance = labelled_performance(
        backends, model_name, lookback_months=lookback_months, budget=budget, version=version
    )
    run.performance[model_name] = performance.to_dict()
    values: dict[str, float] = {}
    pooled = performance.pooled
    evaluated = champion.metrics.get("pr_auc") if champion is not None else None
    if pooled is not None:
        values[LABELLED_PR_AUC] = pooled.pr_auc
        if pooled.frauds >= min_frauds and evaluated:
            values[LABELLED_PR_AUC_RATIO] = pooled.pr_auc / float(evaluated)
    scored_by = f" of v{version}'s scores" if version is not None else ""
    shown = ""
    if pooled is not None:
        shown = f", PR-AUC {pooled.pr_auc:.3f} on {pooled.frauds} frauds"
        if LABELLED_PR_AUC_RATIO in values:
            shown += (
                f" ({values[LABELLED_PR_AUC_RATIO]:.2f} of the {float(evaluated):.3f} it was registered with)"
            )
        elif pooled.frauds < min_frauds:
            shown += f" (fewer than {min_frauds} frauds: no ratio published)"
    timeline.add(
        f"labelled performance {model_name}{scored_by}: {len(performance.windows)} labelled months, "
        f"{len(performance.skipped)} skipped (labels not in){shown}"
    )
    return values


def _evaluate_alarms(
    backends: Backends,
    run: MonitorRun,
    models: Sequence[str],
    thresholds: DriftThresholds,
    now: datetime,
    timeline: Timeline,
) -> None:
    """Put the models' alarms (drift, degraded decisions) and evaluate them at the end of `now`'s period;
    each change is written to the timeline before its event is put (a bus running targets in this process
    runs them inside the put, so their entries follow the alarm's)."""
    alarms = [alarm for model_name in models for alarm in model_alarms(model_name, thresholds)]
    for alarm in alarms:
        backends.alarms.put_alarm(alarm)

    def announce(change: StateChange) -> None:
        timeline.add(
            f"alarm {change.alarm.name}: {change.previous.state.value} -> {change.current.state.value}"
        )
        run.alarm_changes.append(
            {
                "alarm": change.alarm.name,
                "previous": change.previous.state.value,
                "current": change.current.state.value,
                "reason": change.current.reason,
            }
        )

    evaluated_at = datetime.fromtimestamp(_period_end(now, thresholds.period_seconds), UTC)
    backends.alarms.evaluate(evaluated_at, [alarm.name for alarm in alarms], on_change=announce)
    for alarm in alarms:
        run.alarm_states[alarm.name] = backends.alarms.state(alarm.name).value


__all__ = ["MonitorRun", "run_monitor"]
