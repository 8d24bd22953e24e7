"""One structured log line per API call: key id (never the key), client, method, route template, status,
time.

Route templates (`/v1/customers/{token}/profile`) are logged instead of paths, and no request or
response body is ever logged, so no personal data reaches the log. The client address is logged as it
is (`plain`) or as a keyed hash (`hashed`, the default: HMAC-SHA256 of the address, 16 hex digits), which
still tells one client's calls from another's; with no key set, each server process draws its own.
Each call is also counted by the API's service-level meter, when one is given (`inference.slo_metrics`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inference.slo_metrics import ApiMeter

access_log = logging.getLogger("cdp.inference.access")


def client_label(
    client: tuple[str, int] | list | None, mode: Literal["plain", "hashed"], key: bytes
) -> str | None:
    """The client's address (no port) as the log records it: plain, or its keyed hash."""
    if not client:
        return None
    host = str(client[0])
    if mode == "plain":
        return host
    return hmac.new(key, host.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


class AccessLogMiddleware:
    """Pure ASGI middleware (no body buffering) writing one JSON line per HTTP request."""

    def __init__(
        self,
        app: ASGIApp,
        client_address: Literal["plain", "hashed"] = "hashed",
        client_address_key: str | None = None,
        meter: ApiMeter | None = None,
    ) -> None:
        self.app = app
        self.client_address = client_address
        self.meter = meter
        self._key = client_address_key.encode("utf-8") if client_address_key else os.urandom(32)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            if self.meter is not None:
                self.meter.record(status, elapsed_ms)
            route = scope.get("route")
            state = scope.get("state") or {}
            access_log.info(
                json.dumps(
                    {
                        "event": "api_call",
                        "key_id": state.get("key_id"),
                        "client": client_label(scope.get("client"), self.client_address, self._key),
                        "method": scope.get("method"),
                        "route": getattr(route, "path", None) or "unmatched",
                        "status": status,
                        "ms": round(elapsed_ms, 3),
                    },
                    separators=(",", ":"),
                )
            )
