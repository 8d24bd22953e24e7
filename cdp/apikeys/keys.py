"""API-key strings: minting, parsing and checking against a stored record (constant-time)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as _random
from dataclasses import dataclass

PREFIX = "cdpk_"
_KEY = re.compile(r"^cdpk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ParsedKey:
    key_id: str
    secret: str


def secret_hash(secret: str) -> str:
    """Hex SHA-256 of a key's secret part (what the store keeps)."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def mint_key() -> tuple[str, str, str]:
    """A new key: (full key shown once, key id, hash of the secret)."""
    key_id = _random.token_hex(8)
    key, digest = mint_secret(key_id)
    return key, key_id, digest


def mint_secret(key_id: str) -> tuple[str, str]:
    """A new secret for the key id `key_id` (a new key or a rotation): (full key shown once, its hash)."""
    secret = _random.token_urlsafe(32)  # 43 characters, 256 bits
    return f"{PREFIX}{key_id}_{secret}", secret_hash(secret)


def parse_key(text: str) -> ParsedKey | None:
    """The key id and secret of a well-formed key string, else None."""
    match = _KEY.match(text.strip())
    return ParsedKey(match.group(1), match.group(2)) if match else None


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)
