"""`cdp forget | export | retention`: a customer's rights (erasure, access) and the retention of what is
held after an erasure."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from cdp.console.access import authorized, refuse
from cdp.console.output import console, err_console

commands = typer.Typer()
forget_app = typer.Typer(
    name="forget",
    help="Erasure (GDPR art. 17): `--user N` requests it; `confirm ID` by a second privacy officer performs "
    "it (CDP_ERASURE_APPROVALS=2, the default; with 1 `--user N` erases at once).",
    invoke_without_command=True,
)
retention_app = typer.Typer(
    name="retention", help="Retention: legal holds of erased customers, expiring exports."
)


@forget_app.callback()
def forget_command(
    ctx: typer.Context,
    user: Annotated[int | None, typer.Option(help="The customer's user id in core banking.")] = None,
) -> None:
    """Erase a customer by crypto-shredding their data key (two privacy officers by default); audited."""
    if ctx.invoked_subcommand is not None:
        if user is not None:
            raise typer.BadParameter("give --user to request an erasure, or `confirm ID`, not both")
        return
    if user is None:
        raise typer.BadParameter("give --user N to request an erasure, or `cdp forget confirm ID`")
    forget_request(user)


def forget_request(user: int) -> str | None:
    """`cdp forget --user N` as the caller: the request id (printed), or None when it erased at once."""
    from cdp.corebanking.erasure import CustomerWasErased
    from cdp.corebanking.erasure_approval import request_erasure
    from cdp.security.errors import AccessDenied

    caller = authorized("forget")
    try:
        outcome = request_erasure(user, caller)
    except AccessDenied as e:
        refuse(e)
    except CustomerWasErased as e:  # their token secret is gone: nothing is left to erase
        console.print(f"nothing to erase: {e} (already erased)", soft_wrap=True)
        return None
    if outcome.request is not None:
        console.print(
            f"erasure request {outcome.request.id} recorded for customer {outcome.request.customer_token}; "
            f"a second privacy officer performs it with `cdp forget confirm {outcome.request.id}`"
        )
        return outcome.request.id
    _print_erasure(outcome.report)
    return None


@forget_app.command("confirm")
def forget_confirm_command(
    request_id: Annotated[str, typer.Argument(help="The request id `cdp forget --user N` printed.")],
) -> None:
    """Confirm another privacy officer's erasure request and perform it; audited."""
    forget_confirm(request_id)


def forget_confirm(request_id: str) -> None:
    """`cdp forget confirm ID` as the caller: confirm another officer's request and perform the erasure."""
    from cdp.corebanking.erasure import CustomerWasErased
    from cdp.corebanking.erasure_approval import ErasureRequestError, confirm_erasure
    from cdp.security.errors import AccessDenied

    caller = authorized("forget-confirm")
    try:
        report = confirm_erasure(request_id, caller)
    except (AccessDenied, ErasureRequestError) as e:
        refuse(e)
    except CustomerWasErased as e:
        console.print(f"nothing to erase: {e} (already erased)", soft_wrap=True)
        return
    _print_erasure(report)


def _print_erasure(r) -> None:  # noqa: ANN001 - an ErasureReport
    state = "erased" if r.key_deleted else "already erased"
    on = r.erased_at.date().isoformat() if r.erased_at else "?"
    console.print(
        f"customer {r.customer_token}: {state} on {on}; {r.core_banking_records} core-banking records, "
        f"{r.lake_rows} lake rows, {r.online_states} online states, {r.exports} exports removed; "
        f"transactions held until {r.hold_until}"
    )


@commands.command("export")
def export_command(
    user: Annotated[int, typer.Option(help="The customer's user id in core banking.")],
) -> None:
    """Access request: write everything held about a customer, decrypted, to a file; audited."""
    export(user)


def export(user: int) -> None:
    """`cdp export --user N` as the caller: the customer's data to a file (exit 4 when they were erased)."""
    from cdp.corebanking.erasure import CustomerWasErased
    from cdp.corebanking.export import export_customer
    from cdp.security.errors import AccessDenied

    caller = authorized("export")
    try:
        path = export_customer(user, caller)
    except AccessDenied as e:
        refuse(e)
    except CustomerWasErased as e:
        console.print(f"no export: {e}")
        raise typer.Exit(4) from None
    console.print(f"export written to {path} (contains personal data: hand it over, then delete it)")


@retention_app.command("purge")
def retention_purge_command(
    now: Annotated[str | None, typer.Option(help="Purge as of this day, YYYY-MM-DD (default: now).")] = None,
) -> None:
    """Delete held transactions whose legal hold has ended and expired export files; audited."""
    from datetime import UTC, datetime

    from cdp.corebanking.retention import purge

    authorized("retention-purge")
    try:
        as_of = datetime.combine(date.fromisoformat(now), datetime.min.time(), UTC) if now else None
    except ValueError as e:
        err_console.print("[red]--now must be a date YYYY-MM-DD[/red]")
        raise typer.Exit(2) from e
    r = purge(now=as_of)
    console.print(
        f"retention: {r.transactions:,} held transactions of {r.holds_ended} erased customers deleted, "
        f"{r.holds_active} still held; {r.exports} expired exports removed"
    )
