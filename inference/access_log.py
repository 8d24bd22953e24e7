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
MAX_REMEMBERED = 4096  # client labels kept per server process (cleared when full: memory stays bounded)


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
        self._labels: dict[str, str | None] = {}  # host -> label: an HMAC per call cost more than the line

    def _client(self, client: tuple[str, int] | list | None) -> str | None:
        """`client_label` of the request's client, remembered per host (at most `MAX_REMEMBERED`)."""
        if not client:
            return None
        host = str(client[0])
        label = self._labels.get(host)
        if label is None:
            if len(self._labels) >= MAX_REMEMBERED:
                self._labels.clear()
            label = self._labels[host] = client_label(client, self.client_address, self._key)
        return label

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
                        "client": self._client(scope.get("client")),
                        "method": scope.get("method"),
                        "route": getattr(route, "path", None) or "unmatched",
                        "status": status,
                        "ms": round(elapsed_ms, 3),
                    },
                    separators=(",", ":"),
                )
            )
