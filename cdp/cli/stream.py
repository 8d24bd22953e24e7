"""`cdp stream produce | consume`: the newest transactions replayed into the stream, the stream landed in
the lake. (`cdp stream run`, which scores the stream, is the inference package's.)"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cdp.cli.source_data import source_dir
from cdp.console.output import console, progress
from cdp.settings import get_settings

stream_commands = typer.Typer()


@stream_commands.command("produce")
def stream_produce_command(
    directory: Annotated[Path | None, typer.Argument(help="Folder with the IBM files.")] = None,
    rate: Annotated[
        float | None, typer.Option(help="Events per second (default: as fast as possible).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Send at most this many events in this run.")] = None,
    drift: Annotated[
        str | None,
        typer.Option(help="Inject drift from --drift-from on: amount-shift or fraud-pattern (demo, tests)."),
    ] = None,
    drift_from: Annotated[
        float, typer.Option(help="Share of the replay after which the drift starts.", min=0, max=1)
    ] = 0.5,
    upto: Annotated[int | None, typer.Option(help="Stop at this position of the replay.", min=0)] = None,
) -> None:
    """Replay the newest ~5% of transactions in time order through core banking into the stream."""
    stream_produce(directory, rate=rate, limit=limit, drift=drift, drift_from=drift_from, upto=upto)


def stream_produce(
    directory: Path | None,
    *,
    rate: float | None = None,
    limit: int | None = None,
    drift: str | None = None,
    drift_from: float = 0.5,
    upto: int | None = None,
) -> None:
    """Replay the stream's transactions (drift injected from `drift_from` on, when given) up to position
    `upto`, with a progress bar; print what was sent."""
    from cdp.streaming.drift_injection import DriftScenario
    from cdp.streaming.produce import produce

    scenario = DriftScenario(drift, start_fraction=drift_from, seed=get_settings().seed) if drift else None
    with progress() as bar:
        task = bar.add_task("stream produce", total=None)
        r = produce(
            source_dir(directory),
            rate=rate,
            limit=limit,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            drift=scenario,
            upto=upto,
        )
    if r.total == 0:
        console.print("stream: nothing to replay (no transactions at or after the stream cutoff)")
        return
    console.print(
        f"stream: sent {r.sent:,} events ({r.already_sent:,} earlier) of {r.total:,} "
        f"in {r.seconds:.1f}s; cutoff {r.cutoff:%Y-%m-%d %H:%M}"
        + (f"; drift {r.drift['kind']}: {r.drift_rows:,} rows changed" if r.drift else "")
        + (f"; {r.flagged:,} dated outside their card's life (kept, flagged)" if r.flagged else "")
    )


@stream_commands.command("consume")
def stream_consume_command(
    follow: Annotated[bool, typer.Option(help="Keep polling after catching up.")] = False,
) -> None:
    """Consume the stream into the lake until caught up (checkpointed, idempotent by transaction id)."""
    stream_consume(follow=follow)


def stream_consume(*, follow: bool = False) -> None:
    """Land the stream in the lake until caught up (or, with `follow`, keep polling); print the counts."""
    from cdp.streaming.lake_sink import consume

    r = consume(follow=follow)
    console.print(
        f"lake sink: {r.records:,} records read, {r.written:,} landed, {r.duplicates:,} duplicates dropped"
    )
