"""API keys of the public API: a store port (SQLite locally, DynamoDB on AWS; `Backends.api_keys` picks
one) and the key commands."""

from __future__ import annotations

from cdp.apikeys.port import SCOPES, ApiKeyError, ApiKeyRecord, ApiKeyStore, UnknownApiKeyError

__all__ = ["SCOPES", "ApiKeyError", "ApiKeyRecord", "ApiKeyStore", "UnknownApiKeyError"]
