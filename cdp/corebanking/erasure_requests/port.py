"""The erasure-requests port: pending erasure requests, the store behind two-person erasure (one privacy
officer requests, another confirms). A request holds the user id (to erase), the customer token (for the
audit log), who asked and when; its status moves pending -> confirming -> done, each step a conditional
write, so two confirmations of one request cannot both run. Adapters (beside this module): `sqlite`
(mode 0600) here, `dynamodb` in AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

PENDING = "pending"
CONFIRMING = "confirming"
DONE = "done"


@dataclass(frozen=True)
class ErasureRequest:
    id: str
    user: int
    customer_token: str
    requested_by: str
    requested_at: datetime
    status: str = PENDING
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None


@runtime_checkable
class ErasureRequests(Protocol):
    """Erasure requests by id."""

    def add(self, request: ErasureRequest) -> None: ...

    def get(self, request_id: str) -> ErasureRequest | None: ...

    def move(
        self, request_id: str, from_status: str, to_status: str, by: str | None, at: datetime | None
    ) -> bool:
        """Set the status only if it is `from_status` now; True if this call moved it. `by`/`at` record the
        confirmer; moving back to pending clears them; otherwise they are kept."""
        ...
