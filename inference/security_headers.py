"""Security headers on every response, errors included (pure ASGI, set on `http.response.start`).

`Cache-Control: no-store` (scores and profiles are never cached), `X-Content-Type-Options: nosniff`,
`Referrer-Policy: no-referrer`, a `Content-Security-Policy` that allows nothing (`default-src 'none';
frame-ancestors 'none'`) and, behind TLS, `Strict-Transport-Security`. The interactive docs (`/docs`,
`/redoc`) get their own policy: the scripts and styles of their CDN and their inline start-up script.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net https://fonts.googleapis.com 'unsafe-inline'; "
    "font-src https://fonts.gstatic.com; "
    "img-src 'self' https://fastapi.tiangolo.com https://cdn.redoc.ly data:; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def security_headers(path: str, hsts_seconds: int = 0) -> dict[bytes, bytes]:
    """The headers every response to `path` carries."""
    headers = {
        b"cache-control": b"no-store",
        b"x-content-type-options": b"nosniff",
        b"referrer-policy": b"no-referrer",
        b"content-security-policy": (DOCS_CSP if path in DOCS_PATHS else API_CSP).encode(),
    }
    if hsts_seconds > 0:
        headers[b"strict-transport-security"] = f"max-age={hsts_seconds}; includeSubDomains".encode()
    return headers


class SecurityHeadersMiddleware:
    """Adds `security_headers()` to each HTTP response, replacing any the app set itself."""

    def __init__(self, app: ASGIApp, hsts_seconds: int = 0) -> None:
        self.app = app
        self.hsts_seconds = hsts_seconds
        # built once: the API's headers, and the docs' (the only paths with another policy)
        self._api = security_headers("", hsts_seconds)
        self._docs = {path: security_headers(path, hsts_seconds) for path in DOCS_PATHS}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = self._docs.get(scope.get("path", ""), self._api)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in added]
                message = {**message, "headers": kept + list(added.items())}
            await send(message)

        await self.app(scope, receive, send_with_headers)
