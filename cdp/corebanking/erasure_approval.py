"""Two-person erasure: one privacy officer requests, a different one confirms, then the erasure runs.

Erasure is irreversible (the customer's data key is destroyed), so by default (`CDP_ERASURE_APPROVALS=2`)
`cdp forget --user N` only records a request and `cdp forget confirm ID` by another privacy officer
performs it through `forget_customer`. With 1 the request is performed at once. Every step is audited:
`forget-request` and `forget-confirm` (allowed or denied), then the vault's own `forget` record.
Requests expire after `REQUEST_TTL`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cdp.backends import Backends
from cdp.corebanking.erasure import ErasureReport, customer_token_or_erased, forget_customer
from cdp.corebanking.erasure_requests.port import CONFIRMING, DONE, PENDING, ErasureRequest
from cdp.security.errors import AccessDenied
from cdp.security.policy import may_erase
from cdp.security.vault import Caller

REQUEST_TTL = timedelta(days=7)
REQUEST_ACTION = "forget-request"
CONFIRM_ACTION = "forget-confirm"


class ErasureRequestError(ValueError):
    """The request id is unknown, already used or expired (named by id only)."""


@dataclass(frozen=True)
class ErasureOutcome:
    """What `request_erasure` did: recorded a request (two-person rule) or erased at once."""

    request: ErasureRequest | None = None
    report: ErasureReport | None = None


def request_erasure(user: int, caller: Caller, backends: Backends | None = None) -> ErasureOutcome:
    """`cdp forget --user N`: erase now (one approval configured) or record a request for a second officer."""
    b = backends or Backends()
    if b.settings.erasure_approvals <= 1:
        return ErasureOutcome(report=forget_customer(user, caller, b))
    token = customer_token_or_erased(b, user)
    audit = {"actor": caller.id, "role": caller.role, "action": REQUEST_ACTION, "customer_token": token}
    if not may_erase(caller.role):
        b.audit.append(**audit, fields=[], outcome="denied", details={"reason": "role may not erase"})
        raise AccessDenied(f"role {caller.role!r} may not request an erasure (customer {token})")
    request = ErasureRequest(
        "er_" + secrets.token_hex(8), int(user), token, caller.id, datetime.now(UTC).replace(microsecond=0)
    )
    b.erasure_requests.add(request)
    b.audit.append(**audit, fields=[], outcome="allowed", details={"request_id": request.id})
    return ErasureOutcome(request=request)


def confirm_erasure(request_id: str, caller: Caller, backends: Backends | None = None) -> ErasureReport:
    """`cdp forget confirm ID`: a privacy officer other than the requester performs the erasure."""
    b = backends or Backends()
    request = b.erasure_requests.get(request_id)
    token = request.customer_token if request else "-"
    audit = {"actor": caller.id, "role": caller.role, "action": CONFIRM_ACTION, "customer_token": token}

    def refuse(reason: str, error: type[Exception]) -> Exception:
        details = {"request_id": request_id, "reason": reason}
        b.audit.append(**audit, fields=[], outcome="denied", details=details)
        return error(f"erasure request {request_id}: {reason}")

    if request is None:
        raise refuse("no such request", ErasureRequestError)
    if request.status != PENDING:
        raise refuse(f"already {request.status}", ErasureRequestError)
    now = datetime.now(UTC)
    if now - request.requested_at > REQUEST_TTL:
        raise refuse(f"expired (older than {REQUEST_TTL.days} days): request it again", ErasureRequestError)
    if caller.id == request.requested_by:
        raise refuse("the requester cannot confirm their own request (two-person rule)", AccessDenied)
    if not may_erase(caller.role):
        raise refuse(f"role {caller.role!r} may not erase", AccessDenied)
    if not b.erasure_requests.move(request.id, PENDING, CONFIRMING, caller.id, now):
        raise refuse("confirmed by someone else meanwhile", ErasureRequestError)
    try:
        report = forget_customer(request.user, caller, b)
    except BaseException:
        b.erasure_requests.move(request.id, CONFIRMING, PENDING, None, None)
        raise
    b.erasure_requests.move(request.id, CONFIRMING, DONE, None, None)
    b.audit.append(
        **audit, fields=[], outcome="allowed",
        details={"request_id": request.id, "requested_by": request.requested_by},
    )  # fmt: skip
    return report
