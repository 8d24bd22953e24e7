"""Pending two-person erasure requests: the port and its SQLite and DynamoDB adapters
(`Backends.erasure_requests` picks one)."""

from __future__ import annotations

from cdp.corebanking.erasure_requests.port import (
    CONFIRMING,
    DONE,
    PENDING,
    ErasureRequest,
    ErasureRequests,
)

__all__ = ["CONFIRMING", "DONE", "PENDING", "ErasureRequest", "ErasureRequests"]
