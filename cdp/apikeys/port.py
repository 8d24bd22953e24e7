"""The API-key store port: hashed API keys with scopes, created, listed and revoked.

A key is shown once, when created: `cdpk_<key_id>_<secret>`. The store keeps the key id (public, used in
logs), a SHA-256 of the secret (the secret is 256 random bits, so a fast hash is as strong as a slow one
and keeps each request's check in microseconds), the scopes, a label and the creation / revocation times.
Adapters: `cdp.apikeys.sqlite` (local) and `cdp.apikeys.dynamodb` (AWS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

SCOPES = ("fraud:score", "customers:read", "models:read", "models:admin", "invocations")
"""Every scope a key may hold: score transactions, read customer profiles, list models, force a model
reload, call the SageMaker `/invocations` route."""


class ApiKeyError(Exception):
    """Base class of the API-key store's errors."""


class UnknownApiKeyError(ApiKeyError, LookupError):
    """No key with that id."""


class InvalidApiKeyRequestError(ApiKeyError, ValueError):
    """A malformed create request (unknown scope, empty or over-long label)."""


@dataclass(frozen=True)
class ApiKeyRecord:
    """One stored key: everything but the secret itself."""

    key_id: str
    secret_sha256: str  # hex
    scopes: tuple[str, ...]
    label: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public_view(self) -> dict[str, object]:
        """What `cdp keys list` shows: never the hash."""
        return {
            "key_id": self.key_id,
            "label": self.label,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(timespec="seconds"),
        }


@runtime_checkable
class ApiKeyStore(Protocol):
    """Where key records live."""

    def add(self, record: ApiKeyRecord) -> None:
        """Store a new record (its key id must be new)."""
        ...

    def get(self, key_id: str) -> ApiKeyRecord | None:
        """The record with that id, or None."""
        ...

    def list(self) -> list[ApiKeyRecord]:
        """Every record, oldest first."""
        ...

    def revoke(self, key_id: str, when: datetime) -> ApiKeyRecord:
        """Mark the key revoked (idempotent: a revoked key keeps its first revocation time);
        `UnknownApiKeyError` if absent."""
        ...
