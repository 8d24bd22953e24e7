"""Bounds on every request, before the routes see it (pure ASGI: nothing is buffered here).

In this order:
1. headers: more than `max_headers` lines or `max_header_bytes` bytes -> 431;
2. concurrency: more than `max_concurrency` requests in flight in this worker -> 503 + `Retry-After`
   (`/ping` is not counted: a health check always gets its own lane);
3. authentication of protected paths (`/v1/*`, `/invocations` when it needs a key) from the headers
   alone, before one byte of the body is read -> 401 / 429;
4. the body: a `Content-Length` over the route's limit -> 413 at once; a body without one (chunked) is
   counted as it arrives and answered 413 as soon as it passes the limit (the rest is never read);
5. time: a request still running after `timeout_seconds` is answered 504 and its task cancelled. Work in
   a worker thread cannot be interrupted in Python: its result is dropped, and it keeps its concurrency
   slot until it ends, so abandoned work never piles up beyond `max_concurrency`.
An exception no handler answered becomes a one-line 500 (its class is logged, never its message).
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import anyio
from fastapi import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inference.config import ServingConfig

log = logging.getLogger("cdp.inference.guard")

Authenticator = Callable[[Request], Awaitable[None]]  # raises HTTPException (401, 429) to refuse
EXEMPT_FROM_CONCURRENCY = frozenset({"/ping"})
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class RequestLimits:
    """The bounds a worker enforces (see the module docstring)."""

    body_bytes: int = 64 << 10
    route_body_bytes: Mapping[str, int] = field(default_factory=dict)  # path -> limit
    max_headers: int = 100
    max_header_bytes: int = 16 << 10
    timeout_seconds: float = 30.0
    max_concurrency: int = 256

    @classmethod
    def from_config(cls, config: ServingConfig, timeout_seconds: float | None = None) -> RequestLimits:
        return cls(
            body_bytes=config.body_limit_bytes,
            route_body_bytes={
                "/v1/fraud/score": config.score_body_limit_bytes,
                "/v1/fraud/score:batch": config.batch_body_limit_bytes,
                "/invocations": config.invocations_body_limit_bytes,
            },
            max_headers=config.max_headers,
            max_header_bytes=config.max_header_bytes,
            timeout_seconds=config.request_timeout_seconds if timeout_seconds is None else timeout_seconds,
            max_concurrency=config.max_concurrency,
        )

    def body_limit(self, path: str) -> int:
        return self.route_body_bytes.get(path, self.body_bytes)


def _size(limit: int) -> str:
    return f"{limit >> 20} MB" if limit >= 1 << 20 and limit % (1 << 20) == 0 else f"{limit >> 10} KB"


class _Exchange:
    """The response side of one request: knows whether an answer started, drops what comes after ours."""

    def __init__(self, send: Send, on_complete: Callable[[], None] | None = None) -> None:
        self._send = send
        self._on_complete = on_complete
        self.started = False
        self.closed = False  # the guard answered (or gave up): later messages from the app are dropped

    async def send(self, message: Message) -> None:
        if self.closed:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.completed()

    def completed(self) -> None:
        """The response is out (the client may already send its next request): tell the guard once."""
        if self._on_complete is not None:
            on_complete, self._on_complete = self._on_complete, None
            on_complete()

    async def answer(
        self, status: int, detail: str, headers: Mapping[str, str] | None = None, *, close: bool = False
    ) -> None:
        """A one-line JSON error, unless an answer already started (then the rest of it is dropped)."""
        if self.started or self.closed:
            self.closed = True
            return
        self.closed = True
        body = json.dumps({"detail": detail}).encode()
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        raw += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in (headers or {}).items()]
        if close:
            raw.append((b"connection", b"close"))
        await self._send({"type": "http.response.start", "status": status, "headers": raw})
        await self._send({"type": "http.response.body", "body": body})
        self.completed()


def _header(scope: Scope, name: bytes) -> list[bytes]:
    return [v for k, v in scope.get("headers", ()) if k.lower() == name]


def _carries_body(scope: Scope) -> bool:
    """True when a body follows the headers: a refusal before reading it must close the connection, or
    the server would go on reading (and buffering) a body nobody wants to keep the connection alive."""
    if _header(scope, b"transfer-encoding"):
        return True
    return any(v.strip() not in (b"", b"0") for v in _header(scope, b"content-length"))


class RequestGuard:
    """Pure ASGI middleware enforcing `limits`; `authenticate` runs for paths where `protected` is true."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: RequestLimits,
        authenticate: Authenticator | None = None,
        protected: Callable[[str], bool] = lambda _: False,
    ) -> None:
        self.app = app
        self.limits = limits
        self.authenticate = authenticate
        self.protected = protected
        self.in_flight = 0  # one event loop per worker: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(send)
        headers = scope.get("headers") or []
        if len(headers) > self.limits.max_headers:
            await exchange.answer(431, f"at most {self.limits.max_headers} headers", close=True)
            return
        if sum(len(k) + len(v) for k, v in headers) > self.limits.max_header_bytes:
            too_big = f"headers larger than {_size(self.limits.max_header_bytes)}"
            await exchange.answer(431, too_big, close=True)
            return
        if scope.get("path") in EXEMPT_FROM_CONCURRENCY:
            await self._within_time(scope, receive, exchange)
            return
        if self.in_flight >= self.limits.max_concurrency:
            await exchange.answer(
                503,
                "the server is busy, retry shortly",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
                close=_carries_body(scope),
            )
            return
        # a request holds its slot until its response is out, not until the app returns: work after the
        # response (background tasks, logging) must not count, or a keep-alive client's next request finds
        # the slot still taken and 200 clients see 503s under a bound of 256
        self.in_flight += 1
        exchange = _Exchange(send, on_complete=self._release)
        try:
            await self._within_time(scope, receive, exchange)
        finally:
            exchange.completed()

    def _release(self) -> None:
        self.in_flight -= 1

    async def _within_time(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        failures: list[BaseException] = []
        finished = anyio.Event()

        async def work() -> None:
            try:
                await self._admit(scope, receive, exchange)
            except Exception as error:  # answered below, outside the task group
                failures.append(error)
            finally:
                finished.set()

        async with anyio.create_task_group() as group:
            group.start_soon(work)
            with anyio.move_on_after(self.limits.timeout_seconds):
                await finished.wait()
            if not finished.is_set():
                await exchange.answer(504, f"the request took longer than {self.limits.timeout_seconds:g} s")
                group.cancel_scope.cancel()  # async work stops now; a worker thread's result is dropped
        if not failures:
            return
        error = failures.pop()  # break the cycle error -> traceback -> this frame -> failures -> error:
        # left to the cyclic collector, each one would keep the frames (and a read body) alive for long
        if not exchange.closed:
            frame = traceback.extract_tb(error.__traceback__)[-1:] or [None]
            where = f"{frame[0].filename}:{frame[0].lineno}" if frame[0] else "?"
            log.error("unhandled %s at %s", type(error).__name__, where)  # the message may hold values
            await exchange.answer(500, "internal error")
        error.__traceback__ = None
        del error

    async def _admit(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        path = scope.get("path", "")
        if self.authenticate is not None and self.protected(path):
            try:
                await self.authenticate(Request(scope))
            except HTTPException as refused:
                refused.__traceback__ = None  # its frames hold the request
                detail, close = str(refused.detail), _carries_body(scope)
                await exchange.answer(refused.status_code, detail, refused.headers, close=close)
                return
        limit = self.limits.body_limit(path)
        declared = _header(scope, b"content-length")
        if declared:
            if len(set(declared)) > 1 or not declared[0].strip().isdigit():
                await exchange.answer(400, "invalid Content-Length", close=True)
                return
            if int(declared[0]) > limit:
                await exchange.answer(413, f"the body is larger than {_size(limit)}", close=True)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    await exchange.answer(413, f"the body is larger than {_size(limit)}", close=True)
                    return {"type": "http.disconnect"}  # the app stops reading; its answer is dropped
            return message

        await self.app(scope, counted, exchange.send)
