"""The recovery key: a 256-bit AES key that wraps each backup's data key, kept outside the platform home.

Text form (what the key file holds, or what `cdp backup init-recovery-key --print` shows once):
`cdp-recovery-v1:<urlsafe base64 of the 32 key bytes>`. Its id (16 hex digits of a SHA-256 over the key)
is written in each archive's header and in the audit log, so a wrong key is named without being shown.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cdp.backup.errors import RecoveryKeyError

PREFIX = "cdp-recovery-v1:"


@dataclass(frozen=True)
class RecoveryKey:
    """The key bytes and their public id."""

    key: bytes

    @property
    def key_id(self) -> str:
        return recovery_key_id(self.key)

    def text(self) -> str:
        """The key's text form (a secret: print it once, or write it to a 0600 file)."""
        return PREFIX + base64.urlsafe_b64encode(self.key).decode("ascii")

    def __repr__(self) -> str:  # never print key material
        return f"RecoveryKey(key_id={self.key_id!r})"


def recovery_key_id(key: bytes) -> str:
    """16 hex digits naming a recovery key (a one-way function of it)."""
    return hashlib.sha256(b"cdp-recovery-key-id\x00" + key).hexdigest()[:16]


def generate_recovery_key() -> RecoveryKey:
    return RecoveryKey(AESGCM.generate_key(bit_length=256))


def parse_recovery_key(text: str) -> RecoveryKey:
    """The key of its text form; `RecoveryKeyError` (naming no part of it) when malformed."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise RecoveryKeyError(f"not a recovery key (it starts with {PREFIX!r})")
    try:
        key = base64.urlsafe_b64decode(text[len(PREFIX) :].encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise RecoveryKeyError("recovery key is not valid base64") from None
    if len(key) != 32:
        raise RecoveryKeyError("recovery key must be 32 bytes")
    return RecoveryKey(key)


def check_outside_home(path: Path, home: Path) -> None:
    """A recovery key inside the home it protects would be lost (or stolen) with it: refused."""
    resolved = path.expanduser().resolve()
    if resolved == home or home in resolved.parents:
        raise RecoveryKeyError(
            "the recovery key file must be outside CDP_HOME (lost or stolen with the home otherwise)"
        )


def write_recovery_key(path: Path, key: RecoveryKey, home: Path) -> Path:
    """Write a new key file (mode 0600); never overwrites one (older backups need the key it holds)."""
    path = path.expanduser().resolve()
    check_outside_home(path, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RecoveryKeyError(
            f"recovery key file {path} exists: backups sealed with it need it; move it away first"
        ) from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (key.text() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_recovery_key(path: Path) -> RecoveryKey:
    """The key in `path`; refused when the file is missing or readable by group or others."""
    path = path.expanduser()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise RecoveryKeyError(f"recovery key file {path} does not exist") from None
    if mode & 0o077:
        raise RecoveryKeyError(f"recovery key file {path} has mode {mode:04o}; it must be 0600")
    return parse_recovery_key(path.read_text(encoding="ascii", errors="replace"))
