"""`cdp backup [--out FILE]`, `cdp backup init-recovery-key | verify`, `cdp restore FILE`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from cdp.console.access import authorized
from cdp.console.output import console, err_console

backup_app = typer.Typer(
    name="backup",
    help="Seal the platform state (keys, core banking, registry, audit, online, API keys) under the "
    "recovery key.",
    invoke_without_command=True,
)
restore_commands = typer.Typer()

KeyFileOption = Annotated[
    Path | None,
    typer.Option("--recovery-key-file", help="The recovery key file (default: CDP_RECOVERY_KEY_FILE)."),
]


def _key_file(given: Path | None) -> Path:
    from cdp.backup.errors import RecoveryKeyError
    from cdp.settings import get_settings

    path = given or get_settings().recovery_key_file
    if path is None:
        raise RecoveryKeyError("no recovery key: set CDP_RECOVERY_KEY_FILE or pass --recovery-key-file")
    return path


@backup_app.callback()
def backup_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Archive to write (default: ./cdp-backup-<UTC time>.cdpbak).")
    ] = None,
    recovery_key_file: KeyFileOption = None,
) -> None:
    """Back up the platform state into one archive sealed under the recovery key (role admin; audited)."""
    if ctx.invoked_subcommand is not None:
        return
    from cdp.backends import Backends
    from cdp.backup.errors import BackupError
    from cdp.backup.recovery_key import read_recovery_key
    from cdp.backup.service import audit_backup, audit_failure

    caller = authorized("backup")
    b = Backends()
    out = out or Path(f"cdp-backup-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.cdpbak")
    try:
        recovery = read_recovery_key(_key_file(recovery_key_file))
        report = b.home_state.write_backup(out, recovery)
    except BackupError as e:
        audit_failure(b.audit, caller.id, caller.role, "backup", e)
        raise
    audit_backup(b.audit, caller, report)
    parts = ", ".join(f"{name} {n}" for name, n in report.components.items() if n)
    console.print(
        f"backup {report.backup_id} written to {report.path}: {sum(report.components.values())} files "
        f"({parts}), sealed with recovery key {report.recovery_key_id}",
        soft_wrap=True,
        highlight=False,
    )


@backup_app.command("init-recovery-key")
def init_recovery_key_command(
    out: Annotated[
        Path | None, typer.Option("--out", help="Key file to create (default: CDP_RECOVERY_KEY_FILE).")
    ] = None,
    print_once: Annotated[
        bool, typer.Option("--print", help="Print the key once instead of writing a file (store it offline).")
    ] = False,
) -> None:
    """Create the recovery key: a 0600 file outside CDP_HOME, or printed once (role admin; audited)."""
    from cdp.backends import Backends
    from cdp.backup.recovery_key import check_outside_home, generate_recovery_key, write_recovery_key

    caller = authorized("recovery-key-init")
    b = Backends()
    key = generate_recovery_key()
    if print_once:
        where = "printed"
        console.print(key.text(), highlight=False, markup=False)
    else:
        path = _key_file(out)
        check_outside_home(path, b.settings.home)
        where = "file"
        path = write_recovery_key(path, key, b.settings.home)
    b.audit.append(
        actor=caller.id, role=caller.role, action="recovery-key-init", customer_token="-", fields=[],
        outcome="allowed", details={"recovery_key_id": key.key_id, "kept": where},
    )  # fmt: skip
    if print_once:
        err_console.print(f"recovery key {key.key_id}: shown once, store it offline (it is not kept here)")
    else:
        console.print(f"recovery key {key.key_id} written to {path} (mode 0600); keep a copy offline")


@backup_app.command("verify")
def backup_verify_command(
    archive: Annotated[Path, typer.Argument(help="The archive to check.")],
    recovery_key_file: KeyFileOption = None,
) -> None:
    """Authenticate every byte of an archive and check every file against its manifest; writes nothing."""
    from cdp.backup.archive import verify_archive
    from cdp.backup.recovery_key import read_recovery_key

    manifest = verify_archive(archive, read_recovery_key(_key_file(recovery_key_file)))
    parts = ", ".join(f"{name} {len(files)}" for name, files in manifest.components.items() if files)
    console.print(
        f"backup {manifest.backup_id} of {manifest.created} intact: {len(manifest.files)} files ({parts})",
        highlight=False,
    )


@restore_commands.command("restore")
def restore_command(
    archive: Annotated[Path, typer.Argument(help="The archive written by `cdp backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the state this home holds (kept aside, not deleted).")
    ] = False,
    recovery_key_file: KeyFileOption = None,
) -> None:
    """Restore the platform state from an archive: verified whole before anything is written; over a home
    with state only with --force and role admin; audited in the restored log."""
    from cdp.backends import Backends
    from cdp.backup.errors import BackupError
    from cdp.backup.recovery_key import read_recovery_key
    from cdp.backup.service import RECOVERY_ROLE, audit_failure, audit_restore

    b = Backends()
    state = b.home_state
    actor, role = None, RECOVERY_ROLE
    if state.has_state() and force:
        caller = authorized("restore")  # replacing live state: an admin of this home
        actor, role = caller.id, caller.role
    try:
        recovery = read_recovery_key(_key_file(recovery_key_file))
        report = state.restore(archive, recovery, force=force)
    except BackupError as e:
        if state.has_audit_log():
            audit_failure(b.audit, actor or "unauthenticated", role, "restore", e)
        raise
    actor = actor or f"recovery-key-{recovery.key_id}"
    audit_restore(Backends(b.settings).audit, actor, role, report, force=force)  # the restored log
    parts = ", ".join(f"{name} {n}" for name, n in report.components.items() if n)
    console.print(
        f"restored backup {report.backup_id} of {report.created}: {report.files} files ({parts})",
        highlight=False,
        soft_wrap=True,
    )
    if report.replaced_to is not None:
        err_console.print(f"the replaced state was moved to {report.replaced_to}", highlight=False)
    if report.home_moved:
        err_console.print(
            "note: the backup was made from a home at another path; the model registry names its "
            "artifacts by absolute path",
            highlight=False,
        )
