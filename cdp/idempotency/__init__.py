"""The idempotency index of stream consumers: which transaction ids a consumer already wrote, in which
batch, and whether their effects are applied (SQLite locally, DynamoDB on AWS; `Backends.idempotency_index`
picks one)."""

from __future__ import annotations

from cdp.idempotency.port import Claim, IdempotencyIndex

__all__ = ["Claim", "IdempotencyIndex"]
