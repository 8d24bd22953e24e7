"""Sign-in of a dashboard viewer: an identity token (`cdp identity create --out`) or an API key with a
`dashboard:*` scope. The pages a viewer may open come from `cdp.security.policy`; the secret itself is
never kept, shown or logged (only the viewer's name and pages are held in the session)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cdp.apikeys.keys import parse_key, secret_hash
from cdp.security.errors import NotAuthenticated
from cdp.security.policy import dashboard_pages

if TYPE_CHECKING:
    from cdp.backends import Backends

PAGE_TITLES = {"fraud": "Fraud operations", "customers": "Customers", "models": "Model health"}


class SignInRefused(Exception):
    """The secret does not sign anybody in, or opens no page (a one-line reason, no secret in it)."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking, and which pages they may open."""

    name: str
    kind: str  # "identity" or "api-key"
    pages: tuple[str, ...]


def _api_key_viewer(backends: Backends, text: str) -> Viewer | None:
    parsed = parse_key(text)
    if parsed is None:
        return None
    record = backends.api_keys.get(parsed.key_id)
    now = datetime.now(UTC).replace(tzinfo=None)
    digest = secret_hash(parsed.secret)
    if record is None or not record.active or record.expired(now) or digest not in record.secret_hashes(now):
        raise SignInRefused("this API key is not valid")
    return Viewer(f"key {record.key_id}", "api-key", dashboard_pages((), record.scopes))


def sign_in(backends: Backends, secret: str) -> Viewer:
    """The viewer `secret` (identity token or API key) stands for; `SignInRefused` if none or no page."""
    text = (secret or "").strip()
    if not text:
        raise SignInRefused("paste your identity token or API key")
    viewer = _api_key_viewer(backends, text)
    if viewer is None:
        authenticate = getattr(backends.identity, "authenticate", None)
        if authenticate is None:  # an IAM-backed deployment: callers are principals, not tokens
            raise SignInRefused("sign in with an API key here")
        try:
            identity = authenticate(text)
        except NotAuthenticated as e:
            raise SignInRefused(str(e)) from None
        viewer = Viewer(identity.name, "identity", dashboard_pages(identity.roles))
    if not viewer.pages:
        raise SignInRefused(f"{viewer.name} may open no dashboard page")
    return viewer
