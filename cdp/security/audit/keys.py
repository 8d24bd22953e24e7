"""The two audit keys: one MACs the records, the other signs the checkpoints of the log's head.

Both are platform keys (data keys from the key manager, stored wrapped in the data-key store under
reserved ids), so whoever can write the log's files but cannot use the key manager cannot forge either.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cdp.security.datakeys.port import DataKeyStore
from cdp.security.keys.port import KeyManager
from cdp.security.platform_keys import load_or_create

AUDIT_MAC_KEY_ID = "sys_audit_hmac"  # reserved data-key store entry: the record MAC key
AUDIT_CHECKPOINT_KEY_ID = "sys_audit_checkpoint"  # reserved entry: the checkpoint signing key
AUDIT_MAC_KEY_USE = "audit-record-mac"  # the keys' encryption contexts' `use`
AUDIT_CHECKPOINT_KEY_USE = "audit-checkpoint"
AUDIT_KEY_IDS = (AUDIT_MAC_KEY_ID, AUDIT_CHECKPOINT_KEY_ID)  # what a role that audits must read
AUDIT_KEY_USES = (AUDIT_MAC_KEY_USE, AUDIT_CHECKPOINT_KEY_USE)


@dataclass(frozen=True)
class AuditKeys:
    """Record MAC key and checkpoint key. `created`: the checkpoint key was made by this load, so no
    checkpoint can exist yet and the log may be sealed (its current head signed) for the first time."""

    mac_key: bytes
    checkpoint_key: bytes
    created: bool = False

    def __post_init__(self) -> None:
        if len(self.mac_key) < 32 or len(self.checkpoint_key) < 32:
            raise ValueError("audit keys must be at least 256 bits")
        if self.mac_key == self.checkpoint_key:
            raise ValueError("the record MAC key and the checkpoint key must differ")

    def __repr__(self) -> str:  # never print key material
        return f"AuditKeys(created={self.created})"

    @classmethod
    def generate(cls) -> AuditKeys:
        """Fresh random keys held only in memory (tests, throwaway logs): lost with the process."""
        return cls(secrets.token_bytes(32), secrets.token_bytes(32), created=True)


def load_audit_keys(keys: KeyManager, store: DataKeyStore) -> AuditKeys:
    """The platform's audit keys, unwrapped from the data-key store (created there on first use)."""
    mac = load_or_create(keys, store, AUDIT_MAC_KEY_ID, AUDIT_MAC_KEY_USE)
    checkpoint = load_or_create(keys, store, AUDIT_CHECKPOINT_KEY_ID, AUDIT_CHECKPOINT_KEY_USE)
    return AuditKeys(mac.key, checkpoint.key, created=checkpoint.created)
