"""What `cdp monitor run` does: one monitor pass configured from the settings object (`CDP_MONITOR_*`).

The CLI prints what this returns; the demo calls it between stream slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from monitoring.actions import Timeline
from monitoring.drift.job import DriftSettings
from monitoring.loop import MonitorRun, run_monitor
from monitoring.rules import DriftThresholds
from monitoring.snapshots.refresh import refresh_after_monitor

if TYPE_CHECKING:
    from cdp.backends import Backends
    from cdp.settings import Settings
    from monitoring.promotion.shadow import ShadowPolicy
    from monitoring.promotion.switch import SwitchDecision


def drift_settings(settings: Settings) -> DriftSettings:
    """The drift job's sampling and per-column thresholds from the settings."""
    return DriftSettings(
        sample_size=settings.monitor_sample_size,
        seed=settings.seed,
        window_days=settings.monitor_window_days,
        numerical_threshold=settings.monitor_numerical_threshold,
        categorical_threshold=settings.monitor_categorical_threshold,
        score_psi_threshold=settings.monitor_score_psi,
    )


def drift_thresholds(settings: Settings) -> DriftThresholds:
    """When the drift alarms fire, from the settings (the CDK app reads the same defaults)."""
    return DriftThresholds(
        feature_drift_share=settings.monitor_feature_drift_share,
        score_psi=settings.monitor_score_psi,
        labelled_pr_auc_ratio=settings.monitor_labelled_pr_auc_ratio,
    )


def monitor_once(
    backends: Backends,
    *,
    models: Sequence[str] | None = None,
    now: datetime | None = None,
    timeline: Timeline | None = None,
) -> MonitorRun:
    """`cdp monitor run`: drift + labelled performance -> metrics -> alarms -> rules, once."""
    s = backends.settings
    run = run_monitor(
        backends,
        models=tuple(models or s.monitor_models),
        now=now,
        timeline=timeline,
        drift_settings=drift_settings(s),
        thresholds=drift_thresholds(s),
        retrain_cooldown_seconds=s.monitor_retrain_cooldown_seconds,
        performance_lookback_months=s.monitor_performance_lookback_months,
        alert_budget=s.monitor_alert_budget,
        performance_min_frauds=s.monitor_performance_min_frauds,
    )
    refresh_after_monitor(backends)  # the dashboards' tables; a failure is logged, never raised
    return run


def shadow_once(
    backends: Backends,
    *,
    models: Sequence[str] | None = None,
    timeline: Timeline | None = None,
    policy: ShadowPolicy | None = None,
) -> list[SwitchDecision]:
    """Judge every challenger on its shadow events now, as the monitor run does first (the loop's rules
    and local actions installed, so a switch by policy is deployed); `policy` defaults to `CDP_SHADOW_*`."""
    from monitoring.actions import local_actions, switch_challengers
    from monitoring.rules import install_rules, loop_rules

    s = backends.settings
    timeline = timeline or Timeline()
    bus = backends.event_bus
    install_rules(bus, loop_rules(retrain_cooldown_seconds=s.monitor_retrain_cooldown_seconds))
    for name, action in local_actions(backends, bus, timeline).items():
        bus.register_action(name, action)
    return switch_challengers(backends, bus, timeline, tuple(models or s.monitor_models), policy)
