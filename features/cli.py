"""`cdp features build | show | sync-online`: the feature views offline and the cards' online state."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from cdp.console.output import console, err_console, progress
from cdp.settings import get_settings

features_app = typer.Typer(name="features", help="Feature views: offline build, training sets, online state.")


@features_app.command("build")
def features_build_command(
    start: Annotated[str | None, typer.Option(help="First day of the training set, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Day after the training set, YYYY-MM-DD.")] = None,
    cutoff: Annotated[
        str | None, typer.Option(help="CLV cut-off, YYYY-MM-DD (default CDP_CLV_CUTOFF).")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild the fraud features table whole (default: changed months).")
    ] = False,
) -> None:
    """Materialise the feature views over the lake (the fraud view's changed months only, unless --full) and
    write the fraud, CLV and segmentation training sets."""
    from features.commands import build

    summary = build(
        get_settings(),
        start=date.fromisoformat(start) if start else None,
        end=date.fromisoformat(end) if end else None,
        cutoff=date.fromisoformat(cutoff) if cutoff else None,
        full=full,
    )
    console.print_json(data=summary, default=str)


@features_app.command("show")
def features_show_command(
    card: Annotated[str | None, typer.Option("--card", help="Card token (crd_...).")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="User token (usr_...).")] = None,
) -> None:
    """A card's latest offline features and online state, or a customer's features per cut-off."""
    from features.commands import show_card, show_customer

    if (card is None) == (customer is None):
        raise typer.BadParameter("give exactly one of --card or --customer")
    shown = show_card(card, get_settings()) if card else show_customer(customer, get_settings())
    console.print_json(data=shown, default=str)


@features_app.command("sync-online")
def features_sync_online_command(
    until: Annotated[
        str | None, typer.Option(help="Replay events before this time (default: the stream's start).")
    ] = None,
) -> None:
    """Rebuild every card's online state from the lake's history (before the stream starts)."""
    features_sync_online(until)


def features_sync_online(until: str | None = None) -> None:
    """Rebuild the online state from the lake's events before `until` (ISO time; default: the stream's
    start, exit 2 when no split is recorded yet), with a progress bar; print the counts."""
    from datetime import datetime

    from cdp.backends import Backends
    from cdp.lake.split import read_split
    from features.online_sync import sync_online_state

    b = Backends()
    if until is None:
        split = read_split(b.settings.state_dir / "split.json")
        if split is None:
            err_console.print("[red]no stream split recorded yet: run `cdp batch` first, or give --until")
            raise typer.Exit(2)
        cutoff = split.cutoff
    else:
        cutoff = datetime.fromisoformat(until)
    with progress() as bar:
        task = bar.add_task("online state (card buckets)", total=None)
        summary = sync_online_state(
            b, cutoff, lambda done, total: bar.update(task, completed=done, total=total)
        )
    console.print(
        f"online state: {summary['cards']:,} cards from {summary['events']:,} events "
        f"({summary['replayed']:,} replayed, the older ones aggregated) "
        f"before {summary['until']} in {summary['seconds']:.0f}s"
    )
