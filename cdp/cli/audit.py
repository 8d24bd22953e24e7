"""`cdp audit verify`: the audit log's MAC chain and signed head checked."""

from __future__ import annotations

import typer

from cdp.console.output import console, err_console

audit_app = typer.Typer(name="audit", help="The hash-chained audit trail.")


@audit_app.command("verify")
def audit_verify_command() -> None:
    """Verify the audit log's MAC chain and signed head; exit 1 and name the first bad record if altered."""
    audit_verify()


def audit_verify() -> None:
    """Verify the audit log; print the records checked, or name the first bad record and exit 1."""
    from cdp.backends import Backends

    result = Backends().audit.verify()
    if result.ok:
        legacy = ""
        if result.legacy_records:  # written before keyed auditing: protected only from their sealing on
            legacy = f" ({result.legacy_records:,} legacy unkeyed)"
        console.print(
            f"[green]audit log intact[/green]: {result.records:,} records{legacy}, head signed",
            soft_wrap=True,
        )
        return
    where = f" at record {result.first_broken_seq}" if result.first_broken_seq is not None else ""
    err_console.print(f"[red]audit log broken[/red]{where}: {result.reason}", soft_wrap=True)
    raise typer.Exit(1)
