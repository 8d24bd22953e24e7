"""`cdp generate | profile | load | migrate-core-banking | batch`: the source files, core banking and the
batch path into the lake."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from cdp.console.output import console, progress
from cdp.settings import Settings, get_settings

commands = typer.Typer()


def source_dir(directory: Path | None) -> Path:
    """The folder with the IBM files: `directory`, or the settings' data folder."""
    return directory or get_settings().data_dir


@commands.command("generate")
def generate_command(
    users: Annotated[int | None, typer.Option(help="Number of users (2,000 = the real size).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: $CDP_HOME/data).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: CDP_SEED).")] = None,
    start: Annotated[str | None, typer.Option(help="First day of history, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day of history, YYYY-MM-DD.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Write IBM-format users, cards and transactions, plus a hidden ground truth."""
    s = get_settings()
    generate(
        s,
        users=users or s.users,
        out=out or s.data_dir,
        seed=s.seed if seed is None else seed,
        start=date.fromisoformat(start) if start else s.start,
        end=date.fromisoformat(end) if end else s.end,
        workers=workers or s.workers,
    )


def generate(s: Settings, *, users: int, out: Path, seed: int, start: date, end: date, workers: int) -> None:
    """Write the IBM-format files and the ground truth to `out`, with a progress bar; print a summary."""
    from cdp.synth.generator import generate as _generate

    out.mkdir(parents=True, exist_ok=True)
    with progress() as bar:
        task = bar.add_task(f"generating {users:,} users", total=users)
        summary = _generate(
            out,
            users=users,
            seed=seed,
            start=start,
            end=end,
            clv_cutoff=s.clv_cutoff,
            workers=workers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(f"[green]wrote[/green] {out}  ({summary})")


@commands.command("profile")
def profile_command(
    directory: Annotated[Path | None, typer.Argument(help="Folder with the IBM files.")] = None,
    users: Annotated[Path | None, typer.Option(help="Users file (sd254_users.csv).")] = None,
    cards: Annotated[Path | None, typer.Option(help="Cards file (sd254_cards.csv).")] = None,
    transactions: Annotated[Path | None, typer.Option(help="Transactions file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate the IBM files (bad rows to quarantine) and print their statistics and realism checks."""
    profile(directory, users=users, cards=cards, transactions=transactions, as_json=as_json)


def profile(
    directory: Path | None,
    *,
    users: Path | None = None,
    cards: Path | None = None,
    transactions: Path | None = None,
    as_json: bool = False,
) -> None:
    """Validate the IBM files (bad rows to quarantine); print their statistics and realism checks."""
    from cdp.ibm.profile import profile_files, realism_checks
    from cdp.ibm.reader import find_source_files

    s = get_settings()
    if directory is None and not (users or cards or transactions):
        directory = s.data_dir
    if directory is not None:
        found = find_source_files(directory)
        users = users or found.users
        cards = cards or found.cards
        transactions = transactions or found.transactions
    result = profile_files(
        users=users, cards=cards, transactions=transactions, quarantine_dir=s.quarantine_dir
    )
    checks = realism_checks(result)
    if as_json:
        payload = result.to_dict()
        payload["realism_checks"] = [c.__dict__ if hasattr(c, "__dict__") else c for c in checks]
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    result.render(console)
    _render_checks(checks)


def _render_checks(checks: list) -> None:
    from rich.table import Table

    table = Table(title="Realism checks")
    for col in ("check", "value", "target", ""):
        table.add_column(col)
    for c in checks:
        table.add_row(c.name, str(c.value), str(c.target), "[green]pass" if c.passed else "[red]FAIL")
    console.print(table)


@commands.command("load")
def load_command(
    directory: Annotated[Path | None, typer.Argument(help="Folder with the IBM files.")] = None,
) -> None:
    """Load customers and cards (with their PII) into the core-banking OLTP store (idempotent)."""
    load(directory)


def load(directory: Path | None) -> None:
    """Load customers and cards into core banking; print the counts."""
    from cdp.corebanking.load import load_core_banking

    r = load_core_banking(source_dir(directory))
    if r.migrated_cards:
        console.print(
            f"core banking: {r.migrated_cards:,} old-format cards migrated (CVV and clear PAN removed)"
        )
    console.print(
        f"core banking: {r.customers:,} customers ({r.with_email:,} with e-mail), {r.cards:,} cards"
        f"{f', {r.quarantined:,} rows quarantined' if r.quarantined else ''}"
    )


@commands.command("migrate-core-banking")
def migrate_core_banking_command() -> None:
    """Migrate a core-banking store written by an earlier release: drop CVVs, encrypt clear PANs."""
    from cdp.corebanking.migrate import migrate_core_banking as _migrate

    r = _migrate()
    console.print(
        f"core banking: {r.cards:,} cards migrated (CVV and clear PAN removed)"
        if r.cards
        else "core banking: nothing to migrate"
    )


@commands.command("batch")
def batch_command(
    directory: Annotated[Path | None, typer.Argument(help="Folder with the IBM files.")] = None,
) -> None:
    """Batch path: validate, protect and write the oldest ~95% of transactions to the lake (resumable)."""
    batch(directory)


def batch(directory: Path | None) -> None:
    """The batch path into the lake, with a progress bar; print what was read, accepted and written."""
    from cdp.batch.job import run_batch

    with progress() as bar:
        task = bar.add_task("batch -> lake (MB)", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done >> 20, total=total >> 20)

        r = run_batch(source_dir(directory), progress=step)
    for name, st in r.files.items():
        console.print(
            f"{name}: read {st['rows_read']:,} = accepted {st['rows_accepted']:,} "
            f"+ quarantined {st['rows_quarantined']:,}"
            + (
                f"; {st['rows_flagged']:,} accepted rows dated outside their card's life (kept, flagged)"
                if st.get("rows_flagged")
                else ""
            )
        )
    stream = (
        f"{r.stream_rows:,} left for the stream (ts >= {r.split.cutoff:%Y-%m-%d %H:%M})"
        if r.stream_rows
        else "none left for the stream"
    )
    console.print(
        f"lake: {r.batch_rows:,} transactions (batch), {stream}; shards {r.chunks} ({r.chunks_skipped} "
        f"already done); quarantine: {r.quarantine_path}"
        + (f"; flagged: {r.flagged_path}" if r.flagged_path else "")
    )
