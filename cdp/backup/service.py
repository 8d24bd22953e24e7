"""`cdp backup` / `cdp restore` as the platform runs them: who may, what is audited, what is checked.

Every backup and restore, and every refused or failed one where the home has an audit log to hold it, is
one audit record (`backup`, `restore`, `recovery-key-init`) naming the backup id and the recovery key id,
never a path or a key. A backup's own record follows the snapshot, so a restored log ends just before it;
the restore then appends its record to the restored chain (which must verify to accept it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.backup import components
from cdp.backup.archive import (
    BackupReport,
    Manifest,
    RestoreReport,
    restore_archive,
    verify_archive,
    write_backup,
)
from cdp.backup.errors import BackupError
from cdp.backup.recovery_key import RecoveryKey

if TYPE_CHECKING:
    from cdp.security.audit.port import AuditLog
    from cdp.security.vault import Caller

NO_CUSTOMER = "-"
RECOVERY_ROLE = "recovery-key"  # the role a restore into an empty home acts in: holding the key


@dataclass(frozen=True)
class HomeState:
    """The embedded stores of one home, as `cdp backup` copies them (the local backend's state)."""

    home: Path

    def has_state(self) -> bool:
        return bool(components.present(self.home))

    def has_audit_log(self) -> bool:
        return (self.home / "state" / "audit.sqlite").exists() and (
            self.home / "state" / "keyring.json"
        ).exists()

    def write_backup(self, out: Path, recovery: RecoveryKey) -> BackupReport:
        return write_backup(self.home, out, recovery)

    def verify(self, archive: Path, recovery: RecoveryKey) -> Manifest:
        return verify_archive(archive, recovery)

    def restore(self, archive: Path, recovery: RecoveryKey, *, force: bool) -> RestoreReport:
        return restore_archive(archive, self.home, recovery, force=force)


def audit_backup(audit: AuditLog, caller: Caller, report: BackupReport) -> None:
    audit.append(
        actor=caller.id, role=caller.role, action="backup", customer_token=NO_CUSTOMER, fields=[],
        outcome="allowed", details={
            "backup_id": report.backup_id, "recovery_key_id": report.recovery_key_id,
            "files": sum(report.components.values()), "bytes": report.bytes,
            "archive_sha256": report.archive_sha256, "components": _counts(report.components),
        },
    )  # fmt: skip


def audit_restore(audit: AuditLog, actor: str, role: str, report: RestoreReport, *, force: bool) -> None:
    audit.append(
        actor=actor, role=role, action="restore", customer_token=NO_CUSTOMER, fields=[], outcome="allowed",
        details={
            "backup_id": report.backup_id, "backup_created": report.created,
            "recovery_key_id": report.recovery_key_id, "files": report.files,
            "components": _counts(report.components), "force": force,
            "replaced_state_kept": report.replaced_to is not None,
        },
    )  # fmt: skip


def audit_failure(audit: AuditLog, actor: str, role: str, action: str, error: BackupError) -> None:
    """A refused or failed backup/restore: the error's class and its one-line reason (no contents)."""
    audit.append(
        actor=actor, role=role, action=action, customer_token=NO_CUSTOMER, fields=[], outcome="failed",
        details={"reason": type(error).__name__, "message": str(error)[:300]},
    )  # fmt: skip


def _counts(per_component: dict[str, int]) -> str:
    return ",".join(f"{name}={n}" for name, n in sorted(per_component.items()))
