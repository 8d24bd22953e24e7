"""Who may run a command: the caller's identity in a role allowed the action, or a one-line refusal."""

from __future__ import annotations

from typing import NoReturn

import typer


def authorized(action: str):  # noqa: ANN201 - a cdp.security.vault.Caller
    """The caller (its identity from `CDP_IDENTITY_FILE`, or its IAM principal in AWS) in a role that may
    perform `action`; otherwise one line on stderr, exit 3 (the refusal is audited)."""
    from cdp.backends import Backends
    from cdp.security.errors import AccessDenied, NotAuthenticated
    from cdp.security.identity.authorize import authorize

    b = Backends()
    try:
        return authorize(b.identity, b.audit, action)
    except (AccessDenied, NotAuthenticated) as e:
        refuse(e)


def refuse(error: Exception) -> NoReturn:
    """Print `refused: <reason>` on one line (no traceback) and exit 3."""
    typer.echo(f"refused: {error}", err=True)
    raise typer.Exit(3) from None
