"""Local adapter of the identity port: identities issued by an administrator as signed tokens.

`issue` registers an identity and returns its token (shown once; only the register's record is kept).
`authenticate` verifies a token's MAC with the identity-signing key, its expiry, and its registration:
the identity must exist, must not be revoked, and its name and roles must be the registered ones. The
caller's token is read from the file named by the `CDP_IDENTITY_FILE` setting; the platform services'
tokens from `<home>/identities/<service>.token`. Token files must be mode 0600.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.security.errors import NotAuthenticated
from cdp.security.identity import token as tokens
from cdp.security.identity.port import (
    Identity,
    IdentityAdminError,
    IdentityNotFound,
    IssuedIdentity,
    check_name,
)
from cdp.security.identity.register import Registration, SqliteIdentityRegister
from cdp.security.policy import ROLES

if TYPE_CHECKING:
    from cdp.settings import Settings

ADMIN_ROLE = "admin"
BOOTSTRAP_ISSUER = "bootstrap"
REGISTER_FILE = "identities.sqlite"  # in the state folder


def read_token_file(path: Path) -> str:
    """The token in `path`; `NotAuthenticated` if missing, unreadable or accessible to other users."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise NotAuthenticated(f"identity file {path} is not a file")
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise NotAuthenticated(f"identity file {path} is accessible to other users: chmod 600 it")
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        raise NotAuthenticated(f"identity file {path} cannot be read") from None


def write_token_file(path: Path, token: str) -> None:
    """Write `token` to `path` with mode 0600 (the mode is set even if the file existed); a folder it
    creates is 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode("ascii"))
    finally:
        os.close(fd)


def check_roles(roles: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(roles) - ROLES)
    if unknown or not roles:
        raise IdentityAdminError(f"roles must be one or more of: {', '.join(sorted(ROLES))}")
    return tuple(sorted(set(roles)))


class LocalIdentityProvider:
    """`IdentityProvider` over signed tokens and a SQLite register."""

    @classmethod
    def from_settings(cls, settings: Settings, signing_key: Callable[[], bytes]) -> LocalIdentityProvider:
        """The register `<state_dir>/identities.sqlite`, the caller's token file and the services'
        folder from the settings; `signing_key` loads the token signing key on first use."""
        return cls(
            SqliteIdentityRegister(settings.state_dir / REGISTER_FILE),
            signing_key,
            settings.identity_file,
            settings.identities_dir,
        )

    def __init__(
        self,
        register: SqliteIdentityRegister,
        signing_key: Callable[[], bytes],
        token_file: Path | None,
        services_dir: Path,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.register = register
        self._signing_key = signing_key
        self._key: bytes | None = None
        self.token_file = token_file
        self.services_dir = services_dir
        self._clock = clock

    def _key_bytes(self) -> bytes:
        if self._key is None:
            self._key = self._signing_key()
        return self._key

    # -- administration -------------------------------------------------------------------------------
    def issue(
        self, name: str, roles: Sequence[str], *, expires_days: float | None, issued_by: str | None
    ) -> IssuedIdentity:
        """Register a new identity and sign its token. `issued_by=None` is the bootstrap: allowed only
        while the register is empty, and the first identity must hold the `admin` role."""
        check_name(name)
        roles = check_roles(roles)
        if expires_days is not None and expires_days <= 0:
            raise IdentityAdminError("--expires-days must be positive")
        now = self._clock().replace(microsecond=0)
        expires = now + timedelta(days=expires_days) if expires_days is not None else None
        registration = Registration(
            id="idn_" + secrets.token_hex(12), name=name, roles=roles, issued_at=now, expires_at=expires,
            issued_by=issued_by or BOOTSTRAP_ISSUER,
        )  # fmt: skip
        if issued_by is None:
            if ADMIN_ROLE not in roles:
                raise IdentityAdminError("the first identity must have the admin role")
            self.register.add_first(registration)
        else:
            self.register.add(registration)
        claims = {
            "id": registration.id, "name": name, "roles": list(roles), "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()) if expires else None,
        }  # fmt: skip
        return IssuedIdentity(_identity(registration), tokens.sign(self._key_bytes(), claims))

    def revoke(self, name: str, by: str) -> Registration:
        """Revoke `name` (it stops working on its next use); `IdentityNotFound` if unknown."""
        if self.register.by_name(name) is None:
            raise IdentityNotFound(f"no identity named {name!r}")
        self.register.revoke(name, by, self._clock())
        revoked = self.register.by_name(name)
        assert revoked is not None
        return revoked

    def list(self) -> list[Registration]:
        return self.register.list()

    def bootstrapped(self) -> bool:
        """True once any identity was issued."""
        return not self.register.is_empty()

    # -- authentication -------------------------------------------------------------------------------
    def authenticate(self, token: str) -> Identity:
        """The identity a token stands for; `NotAuthenticated` (a fixed phrase) if it does not hold."""
        now = self._clock()
        claims = tokens.verify(self._key_bytes(), token, now)
        registration = self.register.get(claims["id"])
        if registration is None:
            raise NotAuthenticated("identity is not registered")
        if registration.revoked_at is not None:
            raise NotAuthenticated(f"identity {registration.name!r} was revoked")
        if registration.expires_at is not None and now >= registration.expires_at:
            raise NotAuthenticated(f"identity {registration.name!r} has expired")
        if claims.get("name") != registration.name or tuple(claims["roles"]) != registration.roles:
            raise NotAuthenticated("identity token does not match its registration")
        return _identity(registration)

    def current(self) -> Identity:
        if self.token_file is None:
            raise NotAuthenticated("no identity: set CDP_IDENTITY_FILE to your identity token file")
        return self.authenticate(read_token_file(self.token_file))

    def service(self, name: str) -> Identity:
        return self.authenticate(read_token_file(self.service_token_path(name)))

    def service_token_path(self, name: str) -> Path:
        """Where the token of platform service `name` is kept (issue it there with `--out`)."""
        return self.services_dir / f"{check_name(name)}.token"


def _identity(r: Registration) -> Identity:
    return Identity(r.id, r.name, r.roles, r.issued_at, r.expires_at, kind="token")
