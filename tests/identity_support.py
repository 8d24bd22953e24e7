"""Issuing identities in tests, as an administrator would (`cdp identity create --out`)."""

from __future__ import annotations

from pathlib import Path

from cdp.backends import Backends
from cdp.security.identity.local import write_token_file
from cdp.security.identity.port import SERVICE_ROLES

ADMIN = "admin"


def issue(backends: Backends, name: str, *roles: str, path: Path | None = None, days: float = 1) -> Path:
    """Issue `name` with `roles` (bootstrapping an admin first when needed); its token file (0600)."""
    provider = backends.identity
    if not provider.bootstrapped():
        first = provider.issue(ADMIN, ["admin"], expires_days=days, issued_by=None)
        write_token_file(backends.settings.identities_dir / f"{ADMIN}.token", first.token)
    if name == ADMIN:
        return backends.settings.identities_dir / f"{ADMIN}.token"
    issued = provider.issue(name, roles, expires_days=days, issued_by=ADMIN)
    path = path or backends.settings.identities_dir / f"{name}.token"
    write_token_file(path, issued.token)
    return path


def issue_services(backends: Backends) -> None:
    """The pipeline and promotion-gate service identities, where the platform looks for them."""
    for name, roles in SERVICE_ROLES.items():
        issue(backends, name, *roles, path=backends.identity.service_token_path(name))
