"""Identity tokens: a compact signed document `cdp1.<payload>.<mac>`.

The payload is canonical JSON `{"v":1,"id":…,"name":…,"roles":[…],"iat":…,"exp":…}` (times in Unix
seconds, `exp` null for no expiry) in unpadded base64url; the MAC is HMAC-SHA256 under the identity-signing
key over `cdp1.<payload>`, also base64url. Editing any byte of the payload (a role added, the expiry moved)
or signing with another key makes `verify` fail. The key is a platform data key (`sys_identity_hmac`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from cdp.security.datakeys.port import DataKeyStore
from cdp.security.errors import NotAuthenticated
from cdp.security.keys.port import KeyManager
from cdp.security.platform_keys import load_or_create_platform_key

PREFIX = "cdp1"
SIGNING_KEY_ID = "sys_identity_hmac"  # reserved entry of the data-key store holding the wrapped key
SIGNING_KEY_USE = "identity-signing"
MAX_TOKEN_LENGTH = 4096


def load_signing_key(keys: KeyManager, store: DataKeyStore) -> bytes:
    """The identity-signing key, created (wrapped by the key manager) on first use."""
    return load_or_create_platform_key(keys, store, SIGNING_KEY_ID, SIGNING_KEY_USE)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, signed_part: str) -> bytes:
    return hmac.digest(key, signed_part.encode("ascii"), hashlib.sha256)


def sign(key: bytes, claims: dict[str, Any]) -> str:
    """The token for `claims` (id, name, roles, iat, exp)."""
    payload = _b64(json.dumps({"v": 1, **claims}, sort_keys=True, separators=(",", ":")).encode())
    signed_part = f"{PREFIX}.{payload}"
    return f"{signed_part}.{_b64(_mac(key, signed_part))}"


def verify(key: bytes, token: str, now: datetime | None = None) -> dict[str, Any]:
    """The claims of a token whose MAC verifies and which has not expired; `NotAuthenticated` otherwise.

    Messages are fixed phrases: the token is never echoed."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise NotAuthenticated("identity token is malformed")
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise NotAuthenticated("identity token is malformed")
    try:
        mac = _unb64(parts[2])
        expected = _mac(key, f"{parts[0]}.{parts[1]}")
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise NotAuthenticated("identity token is malformed") from None
    if not hmac.compare_digest(mac, expected):
        raise NotAuthenticated("identity token signature does not verify")
    try:
        claims = json.loads(_unb64(parts[1]))
        roles = claims["roles"]
        if claims.get("v") != 1 or not isinstance(claims["id"], str) or not isinstance(roles, list):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise NotAuthenticated("identity token is malformed") from None
    exp = claims.get("exp")
    if exp is not None and (now or datetime.now(UTC)).timestamp() >= float(exp):
        raise NotAuthenticated("identity token has expired")
    return claims
