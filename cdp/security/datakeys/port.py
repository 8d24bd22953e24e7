"""The data-key store port: one wrapped data key per customer token.

Deleting a customer's key is crypto-shredding: every field encrypted under it becomes unreadable. A
deleted key leaves a tombstone (`is_erased`), so the key is never silently re-created for that customer
(`put`/`put_if_absent` refuse) and decryption can say "erased" instead of "unknown".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable


@runtime_checkable
class DataKeyStore(Protocol):
    """Wrapped data keys by customer token."""

    def put(self, customer_token: str, wrapped: bytes, key_version: str) -> None:
        """Store or replace the live key (e.g. re-wrapped after rotation); `CustomerErased` if tombstoned."""
        ...

    def put_if_absent(self, customer_token: str, wrapped: bytes, key_version: str) -> bool:
        """Store the key only if the token has none (live or erased); True if this call stored it."""
        ...

    def get(self, customer_token: str) -> bytes | None:
        """The wrapped key, or None when there is none (never created, or erased)."""
        ...

    def delete(self, customer_token: str) -> bool:
        """Erase the key, leaving a tombstone; True if a live key was erased."""
        ...

    def is_erased(self, customer_token: str) -> bool:
        """True if the token's key was deleted."""
        ...

    def tokens(self) -> Iterator[str]:
        """Every token that has a live key."""
        ...
