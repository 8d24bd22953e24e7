"""`decide_switch(backends, model)`: the challenger's shadow comparison, then the approval policy.

Outcomes:
- `no-challenger`: nothing in shadow;
- `shadow-continues`: too few events or too short a period yet; nothing changes;
- `rejected`: the comparison failed (alert-rate change out of bounds, or too little agreement): the
  challenger is rejected (its alias dropped), the champion serves on;
- `switched`: the comparison passed and the policy approves by itself: a retrain of the champion's feature
  set with no metric drop. Approved as `policy:auto-retrain`; the challenger becomes the champion;
- `awaiting-approval`: the comparison passed but the policy needs a person (a new feature set, a metric
  drop, or no champion yet): `cdp models approve MODEL VERSION --as NAME`.
Every decided comparison is kept as the version's `shadow` evidence (with the route and why) and audited
as `model-shadow-comparison` by `actor` (the promotion-gate service, role model-approver).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdp.registry.approval import AUTO, AUTO_APPROVER, MANUAL, record_approval
from cdp.registry.audit import MAX_REASON_LENGTH, NO_CUSTOMER
from cdp.registry.evidence import SHADOW_KIND
from cdp.registry.port import ModelVersion
from monitoring.promotion.shadow import ShadowComparison, ShadowPolicy, compare_shadow

if TYPE_CHECKING:
    from datetime import datetime

    from cdp.backends import Backends

SHADOW_COMPARISON_ACTION = "model-shadow-comparison"
NO_CHALLENGER = "no-challenger"
SHADOW_CONTINUES = "shadow-continues"
REJECTED = "rejected"
SWITCHED = "switched"
AWAITING_APPROVAL = "awaiting-approval"


@dataclass(frozen=True)
class SwitchDecision:
    """What the shadow comparison and the approval policy decided for one model's challenger."""

    model_name: str
    outcome: str
    challenger_version: int | None = None
    champion_version: int | None = None
    route: str | None = None  # auto | manual, once the comparison passed
    approver: str | None = None
    reasons: list[str] = field(default_factory=list)
    comparison: ShadowComparison | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "outcome": self.outcome,
            "challenger_version": self.challenger_version,
            "champion_version": self.champion_version,
            "route": self.route,
            "approver": self.approver,
            "reasons": list(self.reasons),
            "comparison": self.comparison.to_dict() if self.comparison else None,
        }

    def line(self) -> str:
        """One line for a timeline or a terminal."""
        who = f" v{self.challenger_version}" if self.challenger_version else ""
        by = f" by {self.approver}" if self.approver else ""
        return f"{self.model_name}{who}: {self.outcome}{by} ({'; '.join(self.reasons) or 'nothing to do'})"


def manual_reasons(
    challenger: ModelVersion, champion: ModelVersion | None, comparison: ShadowComparison
) -> list[str]:
    """Why the switch needs a person (empty: the policy may approve it by itself)."""
    if champion is None:
        return ["no champion yet: a first champion is approved by a person"]
    reasons = []
    new, old = set(challenger.lineage.features), set(champion.lineage.features)
    if new != old:
        added, removed = sorted(new - old), sorted(old - new)
        reasons.append(
            f"new feature set (added {', '.join(added[:5]) or 'none'}; "
            f"removed {', '.join(removed[:5]) or 'none'})"
        )
    if comparison.metric_drop:
        reasons.append(
            f"metric drop: labelled PR-AUC {comparison.challenger_pr_auc:.4f} vs the champion's "
            f"{comparison.champion_pr_auc:.4f}"
        )
    return reasons


def decide_switch(
    backends: Backends,
    model_name: str,
    *,
    actor: str,
    role: str = "model-approver",
    policy: ShadowPolicy | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> SwitchDecision:
    """Judge `model_name`'s challenger on its shadow events; reject, switch by policy, or wait for a
    person (see the module docstring). `dry_run` decides and changes nothing."""
    policy = policy or ShadowPolicy.from_settings(backends.settings)
    registry = backends.model_registry
    challenger = registry.challenger(model_name)
    if challenger is None:
        return SwitchDecision(model_name, NO_CHALLENGER)
    champion = registry.champion(model_name)
    comparison = compare_shadow(backends, challenger, champion, policy, now)
    decision = {
        "model_name": model_name,
        "challenger_version": challenger.version,
        "champion_version": champion.version if champion else None,
        "comparison": comparison,
    }
    if not comparison.ready:
        return SwitchDecision(**decision, outcome=SHADOW_CONTINUES, reasons=comparison.reasons)
    manual = manual_reasons(challenger, champion, comparison) if comparison.passed else []
    route = None if not comparison.passed else (MANUAL if manual else AUTO)
    if not dry_run:
        evidence = {**comparison.to_dict(), "approval_route": route, "manual_because": manual}
        registry.record_evidence(model_name, challenger.version, SHADOW_KIND, evidence)
        backends.audit.append(
            actor=actor, role=role, action=SHADOW_COMPARISON_ACTION, customer_token=NO_CUSTOMER, fields=[],
            outcome="allowed",
            details={"model": model_name, "version": challenger.version, "passed": comparison.passed,
                     "events": comparison.events, "agreement": comparison.agreement,
                     "alert_rate_change": comparison.alert_rate_change, "route": route},
        )  # fmt: skip
    summary = "; ".join(comparison.reasons)
    if not comparison.passed:
        if not dry_run:
            registry.reject(
                model_name, challenger.version, actor, _fit(f"shadow comparison failed: {summary}"), role=role
            )
        return SwitchDecision(**decision, outcome=REJECTED, reasons=comparison.reasons)
    if manual:
        return SwitchDecision(**decision, outcome=AWAITING_APPROVAL, route=MANUAL, reasons=manual)
    reason = _fit(f"retrain of the same feature set, shadow comparison within bounds: {summary}")
    if not dry_run:
        registry.approve(model_name, challenger.version, AUTO_APPROVER, reason, role=role)
        record_approval(
            registry, backends.audit, challenger, approver=AUTO_APPROVER, role=role, route=AUTO,
            reason=reason, because=comparison.reasons, executed_by=actor,
        )  # fmt: skip
    return SwitchDecision(
        **decision, outcome=SWITCHED, route=AUTO, approver=AUTO_APPROVER, reasons=comparison.reasons
    )


def _fit(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_LENGTH else reason[: MAX_REASON_LENGTH - 3] + "..."
