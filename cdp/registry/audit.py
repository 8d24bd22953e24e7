"""Audit records of model approvals, rejections, rollbacks and retirements.

The audit log is keyed by customer token; a model decision concerns no customer, so it uses the
placeholder token `-` (`NO_CUSTOMER`) and no field names. Details: model, version, reason, new status.
Separation of duties: an approval (or a rollback, which approves the previous champion again) by the
identity that registered the version is refused and audited as `denied`; so is a retirement.

The registries take the audit log itself or a function that opens it (`AuditSource`): reading the
registry (`list`, `show`, `history`) must not open, and so must not write to, the audit store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from cdp.registry.pii_guard import ensure_no_pii
from cdp.registry.port import InvalidRegistrationError
from cdp.security.audit.port import AuditLog
from cdp.security.errors import AccessDenied

APPROVE_ACTION = "model-approve"
REJECT_ACTION = "model-reject"
ROLLBACK_ACTION = "model-rollback"
RETIRE_ACTION = "model-retire"
APPROVING_ACTIONS = frozenset({APPROVE_ACTION, ROLLBACK_ACTION})
NOT_BY_THE_AUTHOR = {  # decisions the version's registrant may not take, and why
    **dict.fromkeys(APPROVING_ACTIONS, "the identity that registered a version may not approve it"),
    RETIRE_ACTION: "the identity that registered a version may not retire it",
}
NO_CUSTOMER = "-"

MAX_REASON_LENGTH = 1000

T = TypeVar("T")
AuditSource = AuditLog | Callable[[], AuditLog]


class LazyAudit:
    """The audit log of an `AuditSource`, opened on first use (a decision), never by a read."""

    def __init__(self, source: AuditSource) -> None:
        self._source = source
        self._log: AuditLog | None = None

    @property
    def log(self) -> AuditLog:
        if self._log is None:
            source = self._source
            self._log = source if hasattr(source, "append") else source()  # type: ignore[operator]
        return self._log  # type: ignore[return-value]


def validate_decision(actor: str, reason: str) -> None:
    """A decision needs an actor and a reason; the reason must hold no personal data (it is stored)."""
    if not actor or not actor.strip():
        raise InvalidRegistrationError("a decision needs an actor")
    if not reason or not reason.strip():
        raise InvalidRegistrationError("a decision needs a reason")
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidRegistrationError(f"reason is longer than {MAX_REASON_LENGTH} characters")
    ensure_no_pii({"reason": reason}, "decision")


def audited_decision(
    audit: AuditLog,
    *,
    action: str,
    actor: str,
    role: str,
    model_name: str,
    version: int,
    reason: str,
    decide: Callable[[], T],
    registrant: Callable[[], str | None] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> T:
    """Validate, run `decide()`, then append one audit record: `allowed` if it succeeded, `failed` if not.

    For an approval, a rollback or a retirement, `registrant()` gives the identity that registered the
    version: if it is `actor`, the decision is refused (`AccessDenied`, audited `denied`). `extra` adds
    details (no personal data)."""
    validate_decision(actor, reason)
    details = {"model": model_name, "version": int(version), "reason": reason, **(extra or {})}
    try:
        registered_by = registrant() if registrant is not None and action in NOT_BY_THE_AUTHOR else None
        if registered_by is not None and registered_by == actor:
            why = f"separation of duties: {NOT_BY_THE_AUTHOR[action]}"
            audit.append(
                actor=actor, role=role, action=action, customer_token=NO_CUSTOMER, fields=[],
                outcome="denied", details={**details, "registered_by": registered_by, "refusal": why},
            )  # fmt: skip
            raise AccessDenied(f"{model_name} v{int(version)}: {why} ({actor})")
        result = decide()
    except AccessDenied:
        raise
    except Exception as error:
        audit.append(
            actor=actor, role=role, action=action, customer_token=NO_CUSTOMER, fields=[], outcome="failed",
            details={**details, "error": type(error).__name__},
        )  # fmt: skip
        raise
    audit.append(
        actor=actor, role=role, action=action, customer_token=NO_CUSTOMER, fields=[], outcome="allowed",
        details=details,
    )  # fmt: skip
    return result
