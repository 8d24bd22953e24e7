"""The API-key store port: hashed API keys with scopes and an expiry, created, listed, rotated, revoked.

A key is shown once, when created: `cdpk_<key_id>_<secret>`. The store keeps the key id (public, used in
logs), a SHA-256 of the secret (the secret is 256 random bits, so a fast hash is as strong as a slow one
and keeps each request's check in microseconds), the scopes, a label and the creation / revocation times.

A key expires at `expires_at` (None: never, as keys created before expiries existed). Rotating a key gives
it a new secret (same key id) and keeps the previous secret's hash valid until `previous_valid_until`, so
callers can switch to the new secret without downtime; after that only the new secret is accepted.
Adapters: `cdp.apikeys.sqlite` (local) and `cdp.apikeys.dynamodb` (AWS). An adapter whose reads never
leave the process (no network) says so with a class attribute `reads_in_process = True`: a server may then
read on its event loop instead of a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

SCOPES = (
    "fraud:score", "customers:read", "models:read", "models:admin", "invocations", "notices:reply",
    "dashboard:fraud", "dashboard:customers", "dashboard:models",
)  # fmt: skip
"""Every scope a key may hold: score transactions, read customer profiles, list models, force a model
reload, call the SageMaker `/invocations` route, open a dashboard page (fraud operations, customers, model
health)."""


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
    expires_at: datetime | None = None  # None: never expires
    previous_secret_sha256: str | None = None  # the secret before the last rotation (hex)
    previous_valid_until: datetime | None = None  # ... accepted until then

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def expired(self, now: datetime) -> bool:
        """Whether the key is past its expiry at `now` (naive UTC)."""
        return self.expires_at is not None and now >= self.expires_at

    def secret_hashes(self, now: datetime) -> tuple[str, ...]:
        """The secret hashes accepted at `now`: the current one, and the previous one during a rotation's
        overlap."""
        previous = self.previous_secret_sha256
        if previous is not None and self.previous_valid_until is not None and now < self.previous_valid_until:
            return (self.secret_sha256, previous)
        return (self.secret_sha256,)

    def public_view(self) -> dict[str, object]:
        """What `cdp keys list` shows: never the hash."""
        return {
            "key_id": self.key_id,
            "label": self.label,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "revoked_at": _iso(self.revoked_at),
            "expires_at": _iso(self.expires_at),
            "previous_valid_until": _iso(self.previous_valid_until),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")


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

    def rotate(
        self, key_id: str, secret_sha256: str, expires_at: datetime | None, previous_valid_until: datetime
    ) -> ApiKeyRecord:
        """Give an active key a new secret hash and expiry; its current hash stays accepted until
        `previous_valid_until`. `UnknownApiKeyError` if absent, `ApiKeyError` if revoked."""
        ...
