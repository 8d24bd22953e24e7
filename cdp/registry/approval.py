"""The switch to a new champion needs a named approver who is not the version's author.

Two routes, decided by the approval policy after the challenger's shadow comparison passed
(`monitoring.promotion.switch`):
- `auto`: a retrain of the champion's feature set whose comparison stayed within bounds is approved by
  the policy itself, recorded as the approver `policy:auto-retrain` (the service that applied it is kept
  beside it);
- `manual`: a new feature set, a metric drop, or a first champion needs a person:
  `cdp models approve MODEL VERSION --as NAME` (`approve_switch` here). NAME must be the caller's own
  authenticated identity (for an IAM principal, its ARN or its last part), recorded as the caller's
  full identity; the registry refuses the identity that registered the version.
While a model has a champion, only its challenger whose shadow comparison passed may be approved this
way (a rollback, `cdp models rollback`, is the path back to an earlier champion). Every approval is kept
as the version's `approval` evidence (who, when, which route, why) and audited as `model-switch-approval`;
every refusal is one line, audited as denied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cdp.registry.audit import NO_CUSTOMER
from cdp.registry.evidence import APPROVAL_KIND, SHADOW_KIND
from cdp.registry.port import RETIRED, ModelRegistry, ModelVersion, RegistryError
from cdp.security.audit.port import AuditLog

AUTO_APPROVER = "policy:auto-retrain"
SWITCH_APPROVAL_ACTION = "model-switch-approval"
AUTO, MANUAL = "auto", "manual"


class ApprovalRefused(RegistryError):
    """The approval policy refuses this approval (one line: the version and why)."""


def record_approval(
    registry: ModelRegistry,
    audit: AuditLog,
    version: ModelVersion,
    *,
    approver: str,
    role: str,
    route: str,
    reason: str,
    because: Sequence[str] = (),
    executed_by: str | None = None,
) -> dict[str, Any]:
    """Keep who approved the switch, when, by which route and why, with the version (its evidence and its
    model card) and in the audit log."""
    from cdp.registry.card_store import store_approval

    store_approval(registry, version.model_name, version.version, approver)
    document = {
        "approver": approver,
        "role": role,
        "route": route,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reason": reason,
        "because": list(because),
        "author": version.registered_by,
        **({"executed_by": executed_by} if executed_by else {}),
    }
    registry.record_evidence(version.model_name, version.version, APPROVAL_KIND, document)
    audit.append(
        actor=approver, role=role, action=SWITCH_APPROVAL_ACTION, customer_token=NO_CUSTOMER, fields=[],
        outcome="allowed",
        details={"model": version.model_name, "version": version.version, **document,
                 "because": "; ".join(document["because"])},
    )  # fmt: skip
    return document


def check_manual_approval(
    registry: ModelRegistry, model_name: str, version: int, caller_name: str, named: str
) -> tuple[ModelVersion, list[str]]:
    """The version a person may approve now and why it needs a person; `ApprovalRefused` otherwise."""
    if named not in (caller_name, caller_name.rsplit("/", 1)[-1]):  # an IAM principal: its own last part
        raise ApprovalRefused(
            f"--as {named!r} is not the caller ({caller_name!r}): an approver names themself"
        )
    candidate = registry.get(model_name, version)
    if candidate.status == RETIRED:
        raise ApprovalRefused(f"{model_name} v{version} is retired: a retired version is never approved")
    champion = registry.champion_version(model_name)
    if champion is None:
        return candidate, ["no champion yet: a first champion is approved by a person"]
    if champion == version:
        raise ApprovalRefused(f"{model_name} v{version} is already the champion")
    if not candidate.is_challenger:
        raise ApprovalRefused(
            f"{model_name} v{version} is not the challenger: a version switches only after the promotion "
            f"gate and a shadow run beside the champion (cdp monitor shadow {model_name})"
        )
    shadow = registry.evidence(model_name, version).get(SHADOW_KIND)
    if not shadow or not shadow.get("passed"):
        raise ApprovalRefused(
            f"{model_name} v{version} has no passed shadow comparison yet (cdp monitor shadow {model_name})"
        )
    return candidate, [str(r) for r in shadow.get("manual_because", [])] or ["approved by a person"]


def approve_switch(
    registry: ModelRegistry,
    audit: AuditLog,
    model_name: str,
    version: int,
    *,
    caller_name: str,
    role: str,
    named: str,
    reason: str,
) -> ModelVersion:
    """`cdp models approve MODEL VERSION --as NAME`: the checks above, then the registry's approval
    (separation of duties: `AccessDenied` for the version's author), then the record. A refusal by the
    policy is audited as denied and raised as `ApprovalRefused`."""
    try:
        candidate, because = check_manual_approval(registry, model_name, version, caller_name, named)
    except ApprovalRefused as refusal:
        audit.append(
            actor=caller_name, role=role, action=SWITCH_APPROVAL_ACTION, customer_token=NO_CUSTOMER,
            fields=[], outcome="denied",
            details={"model": model_name, "version": int(version), "refusal": str(refusal)},
        )  # fmt: skip
        raise
    approved = registry.approve(model_name, version, caller_name, reason, role=role)
    record_approval(
        registry, audit, candidate, approver=caller_name, role=role, route=MANUAL, reason=reason,
        because=because,
    )  # fmt: skip
    return approved


def approval_summary(evidence: Mapping[str, Mapping[str, Any]]) -> str | None:
    """One line naming who approved a version and how, from its evidence (None: not approved by policy)."""
    approval = evidence.get(APPROVAL_KIND)
    if not approval or "approver" not in approval:
        return None
    return f"approved by {approval['approver']} ({approval.get('route', '?')}) at {approval.get('at', '?')}"
