"""API-key authentication, scopes and rate limits as FastAPI dependencies.

A key arrives as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Missing, malformed, unknown,
revoked, expired or wrong keys get 401 (a rotated key's old secret is accepted until its overlap ends);
a valid key over its rate gets 429 with `Retry-After`; a valid key without the route's scope gets 403.
The key id (never the key) is put on the request for the access log.

The request guard (`inference.request_guard`) authenticates `/v1/*` from the headers before the body is
read (`authenticate_before_body`); the route's dependency then reuses that record (one rate-limit token
per request), and only checks the scope. The key store is read on the event loop when its adapter reads in
process (`reads_in_process`: a local SQLite file), else in a worker thread (DynamoDB).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import anyio.to_thread
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cdp.apikeys.keys import parse_key, secret_hash
from cdp.apikeys.port import ApiKeyRecord
from inference.schemas import ErrorResponse

bearer_scheme = HTTPBearer(auto_error=False, description="`Authorization: Bearer cdpk_...`")
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: cdpk_...`")

AUTH_ERRORS: dict[int | str, dict] = {  # the OpenAPI responses of every authenticated route
    401: {"model": ErrorResponse, "description": "Missing, unknown or revoked API key"},
    403: {"model": ErrorResponse, "description": "The API key lacks the route's scope"},
    429: {"model": ErrorResponse, "description": "Rate limit exceeded (see Retry-After)"},
}


def _refused(detail: str) -> HTTPException:
    """A new 401 per refusal: re-raising one shared instance would chain every refusal's traceback (and
    the request it holds) onto it, a leak an unauthenticated flood turns into gigabytes."""
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


log = logging.getLogger("cdp.inference.auth")


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _secret_accepted(secret: str, record: ApiKeyRecord, now: datetime) -> bool:
    """Whether `secret` is one of the record's accepted secrets at `now` (constant-time comparisons)."""
    digest = secret_hash(secret)
    return any([hmac.compare_digest(digest, accepted) for accepted in record.secret_hashes(now)])


def _verify(
    request: Request, bearer: HTTPAuthorizationCredentials | None, header: str | None
) -> ApiKeyRecord:
    """The caller's active key record from the key store, rate-limited; 401 / 429 otherwise (blocking: the
    store may be remote, so it runs in a worker thread)."""
    state = request.app.state.serving
    text = bearer.credentials if bearer is not None else header
    parsed = parse_key(text) if text else None
    if parsed is None:
        raise _refused("a valid API key is required")
    record = state.key_store.get(parsed.key_id)
    now = _utcnow()
    if record is None or not record.active or not _secret_accepted(parsed.secret, record, now):
        raise _refused("a valid API key is required")
    if record.expired(now):  # only told to a caller holding the secret
        log.info("refused expired API key %s", record.key_id)
        raise _refused("this API key has expired")
    request.state.key_id = record.key_id
    request.state.api_key_record = record
    wait = state.limiter.take(record.key_id)
    if wait > 0:
        raise HTTPException(
            status_code=429,
            detail="rate limit exceeded for this API key",
            headers={"Retry-After": state.limiter.retry_after_header(wait)},
        )
    return record


async def _verify_off_loop(
    request: Request, bearer: HTTPAuthorizationCredentials | None, header: str | None
) -> ApiKeyRecord:
    """`_verify` on the event loop when the key store reads in process (a local point query), else in a
    worker thread (a remote store must never block the loop)."""
    if request.app.state.serving.keys_in_process:
        return _verify(request, bearer, header)
    return await anyio.to_thread.run_sync(_verify, request, bearer, header)


async def authenticate(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Security(bearer_scheme),
    header: str | None = Security(header_scheme),
) -> ApiKeyRecord:
    """The caller's active key record, rate-limited; 401 / 429 otherwise.

    Async, so the usual case (the request guard already authenticated the request) costs no hop to a
    worker thread; only a request the guard did not authenticate reads the key store here."""
    known = getattr(request.state, "api_key_record", None)
    if known is not None:  # already authenticated by the request guard
        return known
    return await _verify_off_loop(request, bearer, header)


async def authenticate_before_body(request: Request) -> None:
    """`authenticate` from the headers alone (the guard calls it before reading the body)."""
    bearer = await bearer_scheme(request)
    header = await header_scheme(request)
    await _verify_off_loop(request, bearer, header)


def require_scope(scope: str) -> Callable[..., Awaitable[ApiKeyRecord]]:
    """A dependency admitting keys that hold `scope` (403 for the others)."""

    async def check(record: ApiKeyRecord = Depends(authenticate)) -> ApiKeyRecord:  # no thread: no I/O
        if scope not in record.scopes:
            raise HTTPException(status_code=403, detail=f"this API key lacks the scope {scope!r}")
        return record

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check
