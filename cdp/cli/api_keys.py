"""`cdp keys create | list | revoke`: the public REST API's keys."""

from __future__ import annotations

from typing import Annotated

import typer

from cdp.console.access import authorized
from cdp.console.output import console, err_console

keys_app = typer.Typer(name="keys", help="API keys of the public REST API (stored hashed, with scopes).")


@keys_app.command("create")
def keys_create_command(
    label: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    scope: Annotated[
        list[str], typer.Option("--scope", help="fraud:score, customers:read, models:read, ...")
    ],
) -> None:
    """Create a key; the secret is printed once and only its hash is stored. Audited."""
    from cdp.apikeys.commands import cli_create
    from cdp.apikeys.port import InvalidApiKeyRequestError

    caller = authorized("api-key-create")
    try:
        created = cli_create(label, scope, actor=caller.id)
    except InvalidApiKeyRequestError as e:
        err_console.print(f"[red]{e}")
        raise typer.Exit(2) from e
    console.print_json(data=created, default=str)
    err_console.print("Store the api_key now: it cannot be shown again.")


@keys_app.command("list")
def keys_list_command() -> None:
    """Keys with their scopes and state (never the secrets)."""
    from cdp.apikeys.commands import cli_list

    console.print_json(data=cli_list(), default=str)


@keys_app.command("revoke")
def keys_revoke_command(key_id: Annotated[str, typer.Argument(help="The key id (not the key).")]) -> None:
    """Revoke a key; audited."""
    from cdp.apikeys.commands import cli_revoke
    from cdp.apikeys.port import UnknownApiKeyError

    caller = authorized("api-key-revoke")
    try:
        console.print_json(data=cli_revoke(key_id, actor=caller.id), default=str)
    except UnknownApiKeyError as e:
        err_console.print(f"[red]{e}")
        raise typer.Exit(2) from e
