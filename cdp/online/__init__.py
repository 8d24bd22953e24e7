"""The online feature store port: per-key feature state for the real-time path (local or DynamoDB;
`Backends.online_store` picks one)."""

from __future__ import annotations

from cdp.online.port import OnlineStore

__all__ = ["OnlineStore"]
