"""`cdp crypto rotate-master-key | status`: the master key that wraps every data key."""

from __future__ import annotations

from typing import Annotated

import typer

from cdp.console.access import authorized
from cdp.console.output import console, err_console, progress

crypto_app = typer.Typer(name="crypto", help="Master keys: rotation of the key that wraps every data key.")


@crypto_app.command("rotate-master-key")
def crypto_rotate_master_key_command(
    rotate: Annotated[
        bool,
        typer.Option("--rotate/--no-rotate", help="Make a new master version first (else re-wrap only)."),
    ] = True,
    retire_old: Annotated[
        bool, typer.Option("--retire-old", help="Then delete master versions no data key names (local).")
    ] = False,
) -> None:
    """New master key version, every data key re-wrapped under it (resumable, audited); old ones retired."""
    from cdp.backends import Backends
    from cdp.security.rotation import rotate_master_key

    caller = authorized("rotate-master-key")
    b = Backends()
    with progress() as bar:
        task = bar.add_task("re-wrapping data keys", total=None)
        r = rotate_master_key(
            b.keys, b.data_keys, b.audit, b.settings.state_dir / "key_rotation.json",
            actor=caller.id, role=caller.role, rotate=rotate, retire_old=retire_old,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    console.print(
        f"master key {r.previous} -> {r.target}{' (resumed)' if r.resumed else ''}: {r.entries:,} data keys, "
        f"{r.rewrapped:,} re-wrapped, {r.already_current:,} already current, "
        f"{r.erased_meanwhile:,} erased meanwhile; retired: {', '.join(r.retired) or 'none'}"
    )
    if not r.complete:
        err_console.print(
            f"[red]incomplete[/red]: {r.remaining:,} data keys still under older versions "
            f"({r.unknown_context:,} without a known context, {r.unreadable:,} unreadable), e.g. "
            f"{', '.join(r.problem_ids[:5])}; fix them and re-run"
        )
        raise typer.Exit(1)


@crypto_app.command("status")
def crypto_status_command() -> None:
    """The current master version and how many live data keys each master version wraps."""
    from collections import Counter

    from cdp.backends import Backends

    authorized("key-status")
    b = Backends()
    per_version = Counter(e.key_version or "?" for e in b.data_keys.entries())
    console.print(f"current master version: {b.keys.current_version}")
    for version, n in sorted(per_version.items()):
        console.print(f"  {version}: {n:,} data keys")
