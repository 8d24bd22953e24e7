"""The shadow comparison: how the challenger did beside the champion on the same live events.

Read from `transactions_shadow` (the stream handler's record of the challenger's scores next to the
champion's on the same features), for the challenger's version and the current champion's:
- volume and period: the comparison decides only once the challenger has scored `min_events` events and
  has been the challenger for `min_hours` (both minimums; 0 turns one off). Until then it is not ready
  and nothing changes;
- alert-rate change: (challenger's alerts - champion's alerts) / max(champion's alerts, 1) on the same
  events, within +-`max_alert_rate_change`: a switch must not flood or starve the fraud team;
- agreement: the share of events both models decide alike (alert or not), at least `min_agreement`;
- PR-AUC of both on the labels that have arrived (`is_fraud` of the scored events, in months holding any
  fraud label: a month with none has its labels missing, as in the monitoring's labelled performance),
  once `min_labelled_frauds` frauds are in. A challenger below the champion by more than
  `max_pr_auc_drop` is a metric drop: not a failure of the comparison, but the approval policy then needs
  a person (`monitoring.promotion.switch`).
Without a champion (nothing served but the degraded rules) only the volume is checked. A model the
stream does not score (the customer models, scored in batch) has no shadow events: only the period is
checked, and the gate's comparison on the same holdout stands in for the shadow run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cdp.catalog.port import CatalogError
from cdp.registry.evidence import CHALLENGER_KIND
from cdp.registry.port import ModelVersion
from monitoring.performance import average_precision

if TYPE_CHECKING:
    from cdp.backends import Backends
    from cdp.settings import Settings

SHADOW_TABLE = "transactions_shadow"
SCORED_TABLE = "transactions_scored"
SETTINGS_PREFIX = "shadow_"


@dataclass(frozen=True)
class ShadowPolicy:
    """When a shadow comparison decides, and the bounds it must stay within."""

    min_events: int = 1000
    min_hours: float = 24.0
    max_alert_rate_change: float = 0.5
    min_agreement: float = 0.95
    max_pr_auc_drop: float = 0.02
    min_labelled_frauds: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> ShadowPolicy:
        """The policy from `CDP_SHADOW_*`."""
        return cls(**{f.name: getattr(settings, SETTINGS_PREFIX + f.name) for f in fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ShadowComparison:
    """The challenger beside the champion on the shadow events so far."""

    model_name: str
    challenger_version: int
    champion_version: int | None
    events: int
    hours: float
    ready: bool
    passed: bool
    metric_drop: bool
    champion_alerts: int = 0
    challenger_alerts: int = 0
    alert_rate_change: float | None = None
    agreement: float | None = None
    labelled_frauds: int = 0
    champion_pr_auc: float | None = None
    challenger_pr_auc: float | None = None
    reasons: list[str] = field(default_factory=list)
    policy: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _since(backends: Backends, challenger: ModelVersion, first_scored: datetime | None) -> datetime | None:
    """When the version became the challenger (its evidence), else its first shadow score."""
    recorded = backends.model_registry.evidence(challenger.model_name, challenger.version)
    at = recorded.get(CHALLENGER_KIND, {}).get("at")
    if at:
        moment = datetime.fromisoformat(str(at))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if first_scored is None:
        return None
    return first_scored if first_scored.tzinfo else first_scored.replace(tzinfo=UTC)


def shadow_frame(backends: Backends, model_name: str, challenger: int, champion: int | None) -> pd.DataFrame:
    """The challenger's shadow rows beside the champion `champion` (0: the degraded rules), one per
    event, with its label where it has arrived (`is_fraud`, null otherwise)."""
    served = 0 if champion is None else int(champion)
    try:
        frame = backends.catalog.query(
            f"SELECT s.txn_id, s.year, s.month, s.champion_probability, s.champion_alert, "
            f"s.fraud_probability, s.would_alert, s.scored_at, t.is_fraud "
            f"FROM {SHADOW_TABLE} s LEFT JOIN {SCORED_TABLE} t ON t.txn_id = s.txn_id "
            f"WHERE s.model = '{model_name}' AND s.model_version = {int(challenger)} "
            f"AND s.champion_version = {served}"
        ).to_pandas()
    except CatalogError:  # no shadow table yet: nothing scored in shadow
        return pd.DataFrame()
    return frame.drop_duplicates("txn_id") if not frame.empty else frame


def compare_shadow(
    backends: Backends,
    challenger: ModelVersion,
    champion: ModelVersion | None,
    policy: ShadowPolicy,
    now: datetime | None = None,
) -> ShadowComparison:
    """Compare the challenger with the champion on their shadow events (see the module docstring)."""
    now = now or datetime.now(UTC)
    champion_version = champion.version if champion is not None else None
    streamed = _stream_scored(backends, challenger.model_name)
    frame = (
        shadow_frame(backends, challenger.model_name, challenger.version, champion_version)
        if streamed
        else pd.DataFrame()
    )
    events = len(frame)
    first = None if frame.empty else pd.Timestamp(frame["scored_at"].min()).to_pydatetime()
    since = _since(backends, challenger, first)
    hours = 0.0 if since is None else max(0.0, (now - since).total_seconds() / 3600)
    base = {
        "model_name": challenger.model_name,
        "challenger_version": challenger.version,
        "champion_version": champion_version,
        "events": events,
        "hours": round(hours, 3),
        "policy": policy.to_dict(),
    }
    waiting = []
    if streamed and events < policy.min_events:
        waiting.append(f"{events} shadow events of the {policy.min_events} needed")
    if hours < policy.min_hours:
        waiting.append(f"{hours:.1f} h in shadow of the {policy.min_hours:g} h needed")
    if waiting:
        return ShadowComparison(**base, ready=False, passed=False, metric_drop=False, reasons=waiting)
    if not streamed:
        reasons = [
            f"{hours:.1f} h as challenger; the stream does not score this model: the promotion gate's "
            "comparison on the same holdout stands in for a shadow run"
        ]
        return ShadowComparison(**base, ready=True, passed=True, metric_drop=False, reasons=reasons)
    if champion is None or frame.empty:
        reasons = [
            f"{events} shadow events; no champion to compare with: the volume alone is checked"
            if champion is None
            else "no shadow events to compare (no minimum volume is set)"
        ]
        return ShadowComparison(**base, ready=True, passed=True, metric_drop=False, reasons=reasons)

    champion_alerts = int(frame["champion_alert"].sum())
    challenger_alerts = int(frame["would_alert"].sum())
    change = (challenger_alerts - champion_alerts) / max(champion_alerts, 1)
    agreement = float((frame["champion_alert"] == frame["would_alert"]).mean())
    reasons = []
    within = abs(change) <= policy.max_alert_rate_change
    reasons.append(
        f"alert-rate change {change:+.1%} ({champion_alerts} -> {challenger_alerts} alerts on "
        f"{events} events) "
        f"{'within' if within else 'outside'} +-{policy.max_alert_rate_change:.0%}"
    )
    agrees = agreement >= policy.min_agreement
    reasons.append(
        f"agreement {agreement:.2%} {'at or above' if agrees else 'below'} {policy.min_agreement:.0%}"
    )
    labelled = _labelled(frame)
    frauds = int(labelled["is_fraud"].sum()) if not labelled.empty else 0
    champion_pr_auc = challenger_pr_auc = None
    drop = False
    if frauds >= policy.min_labelled_frauds:
        labels = labelled["is_fraud"].to_numpy(dtype=bool)
        champion_pr_auc = average_precision(labels, labelled["champion_probability"].to_numpy(np.float64))
        challenger_pr_auc = average_precision(labels, labelled["fraud_probability"].to_numpy(np.float64))
        drop = challenger_pr_auc < champion_pr_auc - policy.max_pr_auc_drop
        reasons.append(
            f"labelled PR-AUC challenger {challenger_pr_auc:.4f} vs champion {champion_pr_auc:.4f} on "
            f"{len(labelled)} events with {frauds} frauds"
            + (f": a drop of more than {policy.max_pr_auc_drop:g}" if drop else "")
        )
    else:
        reasons.append(
            f"{frauds} labelled frauds among the shadow events (PR-AUC compared from "
            f"{policy.min_labelled_frauds})"
        )
    return ShadowComparison(
        **base, ready=True, passed=within and agrees, metric_drop=drop, champion_alerts=champion_alerts,
        challenger_alerts=challenger_alerts, alert_rate_change=change, agreement=agreement,
        labelled_frauds=frauds, champion_pr_auc=champion_pr_auc, challenger_pr_auc=challenger_pr_auc,
        reasons=reasons,
    )  # fmt: skip


def _stream_scored(backends: Backends, model_name: str) -> bool:
    """Whether the stream handler scores this model (the fraud model of the serving configuration)."""
    from inference.config import ServingConfig

    return model_name == ServingConfig.from_settings(backends.settings).fraud_model


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows whose labels are in: a known label, in a month holding at least one fraud label."""
    known = frame[frame["is_fraud"].notna()].copy()
    if known.empty:
        return known
    known["is_fraud"] = known["is_fraud"].astype(bool)
    month_has_fraud = known.groupby(["year", "month"])["is_fraud"].transform("any")
    return known[month_has_fraud]
