"""The online feature store port: per-key feature state for the real-time path (local or DynamoDB)."""

from __future__ import annotations

from cdp.online.port import OnlineStore
from cdp.settings import Settings


def online_store(settings: Settings) -> OnlineStore:
    """The adapter `settings.backend` selects (local: memory + SQLite snapshot; aws: DynamoDB)."""
    if settings.backend == "aws":
        from cdp.online.dynamodb import DynamoDbOnlineStore

        return DynamoDbOnlineStore.from_settings(settings)
    from cdp.online.local import LocalOnlineStore

    return LocalOnlineStore.from_settings(settings)
