"""Where commands print: results on stdout, diagnostics and progress on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=False)
err_console = Console(stderr=True)


def progress() -> Progress:
    """A progress display on stderr: description, bar, done/total, elapsed time."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


def print_timeline(entries: list[dict[str, str]]) -> None:
    """Timeline entries (`at`, `what`) as `HH:MM:SS.mmm  what` lines."""
    for entry in entries:
        console.print(f"[dim]{entry['at'][11:23]}[/dim]  {entry['what']}", highlight=False)
