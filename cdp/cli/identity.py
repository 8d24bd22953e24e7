"""`cdp identity | whoami`: identities issued by an admin, and who the caller is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cdp.console.access import refuse
from cdp.console.output import console, err_console

commands = typer.Typer()
identity_app = typer.Typer(
    name="identity",
    help="Identities: signed tokens issued by an admin; roles come from the issuer, never from a flag.",
)


@identity_app.command("create")
def identity_create_command(
    name: Annotated[str, typer.Argument(help="Who or what the identity is for (lowercase, unique).")],
    role: Annotated[list[str], typer.Option("--role", help="A role (repeatable), e.g. privacy-officer.")],
    expires_days: Annotated[float, typer.Option(help="Days until the token expires.", min=0.001)] = 90,
    out: Annotated[
        Path | None, typer.Option(help="Write the token to this file (mode 0600) instead of printing it.")
    ] = None,
) -> None:
    """Issue an identity and its token (shown once). The first identity must be an admin; after that,
    only an admin may issue (CDP_IDENTITY_FILE = the admin's token file). Audited."""
    identity_create(name, role, expires_days=expires_days, out=out)


def identity_create(
    name: str, roles: list[str], *, expires_days: float = 90, out: Path | None = None
) -> None:
    """Issue identity `name` with `roles` as the caller; its token to `out` (0600) or printed once."""
    from cdp.backends import Backends
    from cdp.security.errors import AccessDenied, NotAuthenticated
    from cdp.security.identity.commands import create_identity
    from cdp.security.identity.local import write_token_file
    from cdp.security.identity.port import IdentityAdminError

    try:
        issued = create_identity(Backends(), name, roles, expires_days)
    except (AccessDenied, NotAuthenticated, IdentityAdminError) as e:
        refuse(e)
    who = issued.identity
    expiry = who.expires_at.isoformat(timespec="seconds") if who.expires_at else "never"
    if out is not None:
        write_token_file(out, issued.token)
        roles_shown = ", ".join(who.roles)
        console.print(
            f"identity {who.name} ({roles_shown}; expires {expiry}): token written to {out}", soft_wrap=True
        )
        return
    typer.echo(issued.token)
    err_console.print(f"identity {who.name} ({', '.join(who.roles)}; expires {expiry}): store the token now, "
                      "it cannot be shown again")  # fmt: skip


@identity_app.command("list")
def identity_list_command() -> None:
    """Issued identities (revoked ones too) with roles and dates, never tokens. Admin only."""
    from cdp.backends import Backends
    from cdp.security.errors import AccessDenied, NotAuthenticated
    from cdp.security.identity.commands import list_identities
    from cdp.security.identity.port import IdentityAdminError

    try:
        console.print_json(data=list_identities(Backends()), default=str)
    except (AccessDenied, NotAuthenticated, IdentityAdminError) as e:
        refuse(e)


@identity_app.command("revoke")
def identity_revoke_command(name: Annotated[str, typer.Argument(help="The identity's name.")]) -> None:
    """Revoke an identity: its token is refused from its next use on. Admin only; audited."""
    from cdp.backends import Backends
    from cdp.security.errors import AccessDenied, NotAuthenticated
    from cdp.security.identity.commands import revoke_identity
    from cdp.security.identity.port import IdentityAdminError, IdentityNotFound

    try:
        revoked = revoke_identity(Backends(), name)
    except (AccessDenied, NotAuthenticated, IdentityAdminError, IdentityNotFound) as e:
        refuse(e)
    console.print(f"identity {revoked.name}: revoked")


@commands.command("whoami")
def whoami_command() -> None:
    """The caller's identity: name, roles, expiry (from CDP_IDENTITY_FILE, or the IAM principal in AWS)."""
    from cdp.backends import Backends
    from cdp.security.errors import NotAuthenticated

    try:
        who = Backends().identity.current()
    except NotAuthenticated as e:
        refuse(e)
    expiry = who.expires_at.isoformat(timespec="seconds") if who.expires_at else "never"
    console.print(f"{who.name}  roles: {', '.join(who.roles) or 'none'}  ({who.kind}; expires {expiry})")
