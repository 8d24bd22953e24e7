"""What `cdp identity create|list|revoke` and `cdp whoami` do, as plain functions (the CLI prints and exits).

Issuing and revoking are audited (`identity-create`, `identity-revoke`: name and roles, never a token).
Bootstrap: while no identity was ever issued, `create` needs no caller and must issue an `admin`; after
that only an `admin` identity may issue or revoke.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cdp.backends import Backends
from cdp.security.identity.authorize import NO_CUSTOMER, authorize
from cdp.security.identity.local import BOOTSTRAP_ISSUER, LocalIdentityProvider
from cdp.security.identity.port import Identity, IdentityAdminError, IssuedIdentity
from cdp.security.identity.register import Registration


def _local(backends: Backends) -> LocalIdentityProvider:
    provider = backends.identity
    if not isinstance(provider, LocalIdentityProvider):
        raise IdentityAdminError(
            "identities are IAM principals with the aws backend: give them roles with CDP_IAM_ROLE_MAP"
        )
    return provider


def create_identity(
    backends: Backends, name: str, roles: Sequence[str], expires_days: float | None
) -> IssuedIdentity:
    """Issue an identity (the bootstrap admin, or by an admin caller); returns it with its token."""
    provider = _local(backends)
    issuer = None
    if provider.bootstrapped():
        issuer = authorize(provider, backends.audit, "identity-create").id
    issued = provider.issue(name, roles, expires_days=expires_days, issued_by=issuer)
    expires = issued.identity.expires_at
    backends.audit.append(
        actor=issuer or BOOTSTRAP_ISSUER, role="admin", action="identity-create", customer_token=NO_CUSTOMER,
        fields=[], outcome="allowed",
        details={"identity": name, "roles": " ".join(issued.identity.roles),
                 "expires_at": expires.isoformat() if expires else None},
    )  # fmt: skip
    return issued


def list_identities(backends: Backends) -> list[dict[str, Any]]:
    """Every issued identity (revoked ones too), never a token; admin only."""
    provider = _local(backends)
    authorize(provider, backends.audit, "identity-list")
    return [r.public_view() for r in provider.list()]


def revoke_identity(backends: Backends, name: str) -> Registration:
    """Revoke an identity by name (admin only); it is refused from its next use on."""
    provider = _local(backends)
    caller = authorize(provider, backends.audit, "identity-revoke")
    revoked = provider.revoke(name, caller.id)
    backends.audit.append(
        actor=caller.id, role=caller.role, action="identity-revoke", customer_token=NO_CUSTOMER, fields=[],
        outcome="allowed", details={"identity": name},
    )  # fmt: skip
    return revoked


def whoami(backends: Backends) -> Identity:
    """The caller's identity (`NotAuthenticated` if there is none that verifies)."""
    return backends.identity.current()
