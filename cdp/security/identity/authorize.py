"""Authorization of a command: authenticate the caller, pick the role the policy allows, audit refusals.

Every refusal (unauthenticated, or no role that may) is one audit record with outcome `denied` and the
customer token `-` (a refusal happens before any customer is looked up); a token is never recorded.
"""

from __future__ import annotations

from cdp.security.audit.port import AuditLog
from cdp.security.errors import AccessDenied, NotAuthenticated
from cdp.security.identity.port import Identity, IdentityProvider
from cdp.security.policy import roles_for
from cdp.security.vault import Caller

NO_CUSTOMER = "-"
UNAUTHENTICATED = "unauthenticated"


def authorize(
    provider: IdentityProvider, audit: AuditLog, action: str, identity: Identity | None = None
) -> Caller:
    """The caller (`provider.current()`, or `identity`) acting in a role that may perform `action`.

    Raises `NotAuthenticated` or `AccessDenied` after auditing the refusal."""
    allowed = roles_for(action)
    if identity is None:
        try:
            identity = provider.current()
        except NotAuthenticated as e:
            audit.append(
                actor=UNAUTHENTICATED, role="-", action=action, customer_token=NO_CUSTOMER, fields=[],
                outcome="denied", details={"reason": str(e)},
            )  # fmt: skip
            raise
    role = next((r for r in sorted(identity.roles) if r in allowed), None)
    if role is None:
        held = ", ".join(identity.roles) or "none"
        needs = " or ".join(sorted(allowed))
        reason = f"identity {identity.name!r} (roles: {held}) may not {action}: needs {needs}"
        audit.append(
            actor=identity.name, role="+".join(identity.roles) or "-", action=action,
            customer_token=NO_CUSTOMER, fields=[], outcome="denied", details={"reason": reason},
        )  # fmt: skip
        raise AccessDenied(reason)
    return Caller(identity.name, role)
