"""`cdp`: the single command-line entry point of the platform.

Heavy libraries are imported inside the commands so that `cdp --help` starts fast.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cdp.settings import Settings, get_settings

app = typer.Typer(
    name="cdp",
    help="Secure Customer Data Platform and ML platform for banks.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=False)
err_console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


@app.command()
def generate(
    users: Annotated[int | None, typer.Option(help="Number of users (2,000 = the real size).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: $CDP_HOME/data).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: CDP_SEED).")] = None,
    start: Annotated[str | None, typer.Option(help="First day of history, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day of history, YYYY-MM-DD.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Write IBM-format users, cards and transactions, plus a hidden ground truth."""
    s = get_settings()
    run_generate(
        s,
        users=users or s.users,
        out=out or s.data_dir,
        seed=s.seed if seed is None else seed,
        start=date.fromisoformat(start) if start else s.start,
        end=date.fromisoformat(end) if end else s.end,
        workers=workers or s.workers,
    )


def run_generate(
    s: Settings, *, users: int, out: Path, seed: int, start: date, end: date, workers: int
) -> None:
    from cdp.synth.generate import generate as _generate

    out.mkdir(parents=True, exist_ok=True)
    with _progress() as progress:
        task = progress.add_task(f"generating {users:,} users", total=users)
        summary = _generate(
            out,
            users=users,
            seed=seed,
            start=start,
            end=end,
            clv_cutoff=s.clv_cutoff,
            workers=workers,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    console.print(f"[green]wrote[/green] {out}  ({summary})")


@app.command()
def profile(
    directory: Annotated[Path | None, typer.Argument(help="Folder with the IBM files.")] = None,
    users: Annotated[Path | None, typer.Option(help="Users file (sd254_users.csv).")] = None,
    cards: Annotated[Path | None, typer.Option(help="Cards file (sd254_cards.csv).")] = None,
    transactions: Annotated[Path | None, typer.Option(help="Transactions file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate the IBM files (bad rows to quarantine) and print their statistics and realism checks."""
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
    result = profile_files(users=users, cards=cards, transactions=transactions, quarantine_dir=s.quarantine_dir)
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


@app.command()
def demo() -> None:
    """Run the platform end to end on the embedded default: generate -> validate -> profile."""
    s = get_settings()
    console.rule(f"[bold]CDP demo[/bold]  home={s.home}  backend={s.backend}  users={s.users}")
    console.rule("1. generate IBM-format data with a hidden ground truth")
    run_generate(s, users=s.users, out=s.data_dir, seed=s.seed, start=s.start, end=s.end, workers=s.workers)
    console.rule("2. validate and profile")
    profile(directory=s.data_dir, users=None, cards=None, transactions=None, as_json=False)
    console.rule("[green]demo finished")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
