"""API keys of the public API: a store port (SQLite locally, DynamoDB on AWS) and the key commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp.apikeys.port import SCOPES, ApiKeyError, ApiKeyRecord, ApiKeyStore, UnknownApiKeyError

if TYPE_CHECKING:
    from cdp.settings import Settings

__all__ = ["SCOPES", "ApiKeyError", "ApiKeyRecord", "ApiKeyStore", "UnknownApiKeyError", "api_key_store"]


def api_key_store(settings: Settings) -> ApiKeyStore:
    """The adapter `settings.backend` selects (local: SQLite; aws: DynamoDB)."""
    if settings.backend == "aws":
        from cdp.apikeys.dynamodb import DynamoDbApiKeyStore

        return DynamoDbApiKeyStore.from_settings(settings)
    from cdp.apikeys.sqlite import SqliteApiKeyStore

    return SqliteApiKeyStore.from_settings(settings)
