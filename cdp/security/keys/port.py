"""The key-management port: envelope encryption of per-customer data keys under a master key.

A data key is a fresh 256-bit AES key. It is used in clear only in memory and stored only "wrapped"
(encrypted under the master key). The encryption context (a small str->str map, e.g. the customer token)
is bound to the wrapped key: unwrapping with any other context fails with `KeyAccessError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class DataKey:
    """A freshly generated data key: `plaintext` stays in memory, `wrapped` is what gets stored."""

    plaintext: bytes
    wrapped: bytes
    key_version: str

    def __repr__(self) -> str:  # never print key material
        return f"DataKey(key_version={self.key_version!r}, wrapped={len(self.wrapped)} bytes)"


@runtime_checkable
class KeyManager(Protocol):
    """Generates and unwraps data keys under a rotating master key."""

    def generate_data_key(self, context: dict[str, str]) -> DataKey:
        """A new AES-256 data key, wrapped under the current master key version with `context` bound."""
        ...

    def decrypt_data_key(self, wrapped: bytes, context: dict[str, str]) -> bytes:
        """The plaintext of `wrapped`; `KeyAccessError` if `context` differs or the bytes were altered."""
        ...

    def rotate(self) -> str:
        """Make a new master key version current and return its id; old wrapped keys still unwrap."""
        ...

    @property
    def current_version(self) -> str:
        """The master key version new and re-wrapped keys are wrapped under."""
        ...

    def rewrap(self, wrapped: bytes, context: dict[str, str]) -> tuple[bytes, str]:
        """The same data key wrapped under the current master version, same context: (wrapped, version).

        The plaintext key never leaves the key manager's trust boundary where it can help it (KMS
        ReEncrypt); `KeyAccessError` if `context` is not the one bound to `wrapped`."""
        ...

    def retire(self, in_use: set[str]) -> tuple[str, ...]:
        """Delete every master version that is neither current nor in `in_use`; return those deleted.

        `KeyRetirementUnsupported` where the key service keeps old versions itself (KMS)."""
        ...


def canonical_context(context: dict[str, str]) -> bytes:
    """The canonical JSON bytes of an encryption context (sorted keys, no spaces), used as AEAD data."""
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
        raise TypeError("encryption context keys and values must be strings")
    return json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
