"""`cdp audit verify`: the audit log's MAC chain and signed head checked; `cdp audit export`: its records
as JSON lines for a SIEM."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cdp.console.access import authorized
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


@audit_app.command("export")
def audit_export_command(
    since: Annotated[
        str, typer.Option("--since", help="From this time: 2026-03-01, 2026-03-01T10:00 (UTC), or 24h, 7d.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (mode 0600; default: standard output).")
    ] = None,
) -> None:
    """Audit records since a time as JSON lines for a SIEM (role admin; the export itself is audited)."""
    from cdp.backends import Backends
    from cdp.security.audit.export import export_jsonl, parse_since

    try:
        start = parse_since(since)
    except ValueError as e:
        err_console.print(str(e), markup=False)
        raise typer.Exit(2) from None
    caller = authorized("audit-export")
    b = Backends()
    if out is None:
        report = export_jsonl(b.audit.records(), start, sys.stdout)
        sys.stdout.flush()
    else:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            report = export_jsonl(b.audit.records(), start, f)
    b.audit.append(
        actor=caller.id, role=caller.role, action="audit-export", customer_token="-", fields=[],
        outcome="allowed", details={
            "since": start.isoformat(), "records": report.records, "redacted": report.redacted,
            "first_seq": report.first_seq or 0, "last_seq": report.last_seq or 0,
        },
    )  # fmt: skip
    where = f" to {out}" if out is not None else ""
    err_console.print(
        f"{report.records:,} audit records exported{where}"
        + (f"; {report.redacted} redacted (looked like personal data)" if report.redacted else ""),
        highlight=False,
    )
