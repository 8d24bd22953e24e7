"""The data-key store port: one wrapped data key per entry id (a customer token or a reserved system id).

Deleting a customer's key is crypto-shredding: every field encrypted under it becomes unreadable. A
deleted key leaves a tombstone (`is_erased`), so the key is never silently re-created for that customer
(`put`/`put_if_absent` refuse) and decryption can say "erased" instead of "unknown".

Each entry may carry the encryption context its key is bound to (`context`), so a master-key rotation can
re-wrap every entry without knowing who wrote it. Entries written without one (older rows) get theirs
from the known rules in `cdp.security.keycontexts` and have it stored when they are re-wrapped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class StoredKey:
    """One live entry: its id, wrapped key, master key version and (if stored) encryption context."""

    entry_id: str
    wrapped: bytes
    key_version: str | None
    context: dict[str, str] | None

    def __repr__(self) -> str:  # the wrapped bytes are not secret, but keep logs short
        return f"StoredKey({self.entry_id!r}, key_version={self.key_version!r})"


@runtime_checkable
class DataKeyStore(Protocol):
    """Wrapped data keys by entry id (customer token, or a reserved `sys_...` id)."""

    def put(
        self, customer_token: str, wrapped: bytes, key_version: str, context: Mapping[str, str] | None = None
    ) -> None:
        """Store or replace the live key; `CustomerErased` if tombstoned."""
        ...

    def put_if_absent(
        self, customer_token: str, wrapped: bytes, key_version: str, context: Mapping[str, str] | None = None
    ) -> bool:
        """Store the key only if the id has none (live or erased); True if this call stored it."""
        ...

    def swap(
        self, entry_id: str, expected: bytes, wrapped: bytes, key_version: str, context: Mapping[str, str]
    ) -> bool:
        """Replace a live key only if it still is `expected` (compare-and-swap; re-wrapping); True if so."""
        ...

    def get(self, customer_token: str) -> bytes | None:
        """The wrapped key, or None when there is none (never created, or erased)."""
        ...

    def entry(self, entry_id: str) -> StoredKey | None:
        """The live entry with its version and context, or None."""
        ...

    def entries(self) -> Iterator[StoredKey]:
        """Every live entry."""
        ...

    def delete(self, customer_token: str) -> bool:
        """Erase the key, leaving a tombstone; True if a live key was erased."""
        ...

    def is_erased(self, customer_token: str) -> bool:
        """True if the id's key was deleted."""
        ...

    def tokens(self) -> Iterator[str]:
        """Every id that has a live key."""
        ...


def encode_context(context: Mapping[str, str] | None) -> str | None:
    """The stored form of a context: canonical JSON (sorted keys), or None."""
    if context is None:
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items()):
        raise TypeError("encryption context keys and values must be strings")
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode_context(text: str | None) -> dict[str, str] | None:
    """The context of a stored entry (None when it was written without one)."""
    return None if text is None else dict(json.loads(text))
