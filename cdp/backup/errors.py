"""Errors of backup and restore: one-line messages naming files, key ids and components, never contents."""

from __future__ import annotations

from cdp.security.errors import SecurityError


class BackupError(SecurityError):
    """A backup or restore cannot go on as asked."""


class RecoveryKeyError(BackupError):
    """The recovery key is missing, unreadable, readable by others, or in the wrong place."""


class WrongRecoveryKey(BackupError):
    """The archive was not sealed with this recovery key."""


class ArchiveIntegrityError(BackupError):
    """The archive is not one of ours, was altered, or was cut short: nothing is restored from it."""


class HomeNotEmpty(BackupError):
    """The home already holds platform state; a restore would replace it (use --force)."""


class BackupUnavailable(BackupError):
    """This backend's state is backed up by the cloud provider, not by `cdp backup`."""
