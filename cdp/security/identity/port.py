"""The identity port: who is calling, with roles that come from configuration, never from the caller.

Adapters: `LocalIdentityProvider` (identities issued by an administrator as signed tokens, registered in
a SQLite file; the caller presents its token through the `CDP_IDENTITY_FILE` setting) and
`IamIdentityProvider` (the caller's IAM principal from `sts:GetCallerIdentity`, mapped to roles by the
`CDP_IAM_ROLE_MAP` setting). `cdp.backends.Backends.identity` picks one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from cdp.security.errors import NotAuthenticated

# The services of the platform and the roles they run with (issued like any other identity).
ML_PIPELINE_SERVICE = "ml-pipeline"  # runs the training pipelines and registers model versions
PROMOTION_GATE_SERVICE = "promotion-gate"  # the automatic promotion gate and the deployment it triggers
SERVICE_ROLES: dict[str, tuple[str, ...]] = {
    ML_PIPELINE_SERVICE: ("ml-pipeline",),
    PROMOTION_GATE_SERVICE: ("model-approver",),
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class IdentityNotFound(LookupError):
    """No identity of that name is registered."""


class IdentityAdminError(ValueError):
    """An identity cannot be issued or revoked as asked (bad name, unknown role, name taken, ...)."""


@dataclass(frozen=True)
class Identity:
    """An authenticated principal: a stable id (what the audit log records), a display name, its roles."""

    id: str
    name: str
    roles: tuple[str, ...]
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    kind: str = "token"  # "token" (local, signed) or "iam" (an AWS principal)


@dataclass(frozen=True)
class IssuedIdentity:
    """An identity just issued and its token (shown once, never stored)."""

    identity: Identity
    token: str

    def __repr__(self) -> str:  # never print the token
        return f"IssuedIdentity(identity={self.identity!r})"


@runtime_checkable
class IdentityProvider(Protocol):
    """Authenticates the caller of this process and the platform's service identities."""

    def current(self) -> Identity:
        """The caller of this process; `NotAuthenticated` when there is none or it does not verify."""
        ...

    def service(self, name: str) -> Identity:
        """The identity the named platform service runs as (`ML_PIPELINE_SERVICE`, ...)."""
        ...


def check_name(name: str) -> str:
    """Identity names: 1-63 lowercase letters, digits, '.', '_' or '-' (they appear in the audit log)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise IdentityAdminError("an identity name is 1-63 lowercase letters, digits, '.', '_' or '-'")
    return name


__all__ = [
    "ML_PIPELINE_SERVICE",
    "PROMOTION_GATE_SERVICE",
    "SERVICE_ROLES",
    "Identity",
    "IdentityAdminError",
    "IdentityNotFound",
    "IdentityProvider",
    "IssuedIdentity",
    "NotAuthenticated",
    "check_name",
]
