"""Deterministic keyed tokens for customer and card ids, and the HMAC key behind them.

A token is `<prefix>` + the first 128 bits of HMAC-SHA256(token key, "<kind>:<id>") in lowercase base32
(26 characters): `usr_` + 26 = 30 characters, same for `crd_`. The same key gives the same token in every
table and run (joinable); without the key a token reveals nothing about the id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.security.datakeys.port import DataKeyStore
from cdp.security.errors import KeyAccessError
from cdp.security.keys.port import KeyManager

USER_PREFIX = "usr_"
CARD_PREFIX = "crd_"
TOKEN_LENGTH = 30
TOKEN_KEY_ID = "sys_token_hmac"  # reserved entry of the data-key store holding the wrapped HMAC key
_TOKEN_KEY_CONTEXT = {"use": "token-hmac", "id": TOKEN_KEY_ID}
_USER_TOKEN = re.compile(r"^usr_[a-z2-7]{26}$")


def is_user_token(value: object) -> bool:
    """True if `value` has the shape of a customer token."""
    return isinstance(value, str) and _USER_TOKEN.match(value) is not None


def load_or_create_token_key(keys: KeyManager, store: DataKeyStore) -> bytes:
    """The platform's HMAC token key: unwrapped from the data-key store, created there on first use.

    Creation is race-free (`put_if_absent`): concurrent first callers all end up with the same key.
    """
    wrapped = store.get(TOKEN_KEY_ID)
    if wrapped is None:
        fresh = keys.generate_data_key(dict(_TOKEN_KEY_CONTEXT))
        if store.put_if_absent(TOKEN_KEY_ID, fresh.wrapped, fresh.key_version, context=_TOKEN_KEY_CONTEXT):
            return fresh.plaintext
        wrapped = store.get(TOKEN_KEY_ID)
        if wrapped is None:
            raise KeyAccessError(f"token key entry {TOKEN_KEY_ID} exists but holds no key")
    return keys.decrypt_data_key(wrapped, dict(_TOKEN_KEY_CONTEXT))


class Tokenizer:
    """Keyed tokens for user ids and (user, card index) pairs, scalar and vectorised."""

    def __init__(self, token_key: bytes) -> None:
        if len(token_key) < 32:
            raise ValueError("token key must be at least 256 bits")
        self._key = bytes(token_key)
        self._users: dict[int, str] = {}
        self._cards: dict[tuple[int, int], str] = {}

    def _token(self, prefix: str, message: str) -> str:
        digest = hmac.digest(self._key, message.encode("ascii"), hashlib.sha256)[:16]
        return prefix + base64.b32encode(digest).decode("ascii").rstrip("=").lower()

    def user_token(self, user: int) -> str:
        """`usr_…` token of a user id."""
        user = int(user)
        tok = self._users.get(user)
        if tok is None:
            tok = self._users[user] = self._token(USER_PREFIX, f"user:{user}")
        return tok

    def card_token(self, user: int, card_index: int) -> str:
        """`crd_…` token of a card (user id + card index within the user)."""
        key = (int(user), int(card_index))
        tok = self._cards.get(key)
        if tok is None:
            tok = self._cards[key] = self._token(CARD_PREFIX, f"card:{key[0]}:{key[1]}")
        return tok

    def user_tokens(self, users: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Tokens for an integer column (one HMAC per distinct id; nulls stay null)."""
        distinct, indices = _distinct(_to_numpy(users))
        dictionary = pa.array([self.user_token(u) for u in distinct], pa.string())
        return pc.take(dictionary, _masked(indices, _null_mask(users)))

    def card_tokens(self, users: pa.Array | pa.ChunkedArray, cards: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Tokens for (user, card index) column pairs (one HMAC per distinct card)."""
        combined = _to_numpy(users).astype(np.int64) * 256 + _to_numpy(cards).astype(np.int64)
        distinct, indices = _distinct(combined)
        dictionary = pa.array([self.card_token(c // 256, c % 256) for c in distinct], pa.string())
        mask = _null_mask(users)
        card_mask = _null_mask(cards)
        if card_mask is not None:
            mask = card_mask if mask is None else (mask | card_mask)
        return pc.take(dictionary, _masked(indices, mask))


def _distinct(ids: np.ndarray) -> tuple[list[int], pa.Array]:
    """Distinct values of `ids` (first-seen order) and each row's index into them (hashing, no sort)."""
    encoded = pc.dictionary_encode(pa.array(ids))
    return encoded.dictionary.to_pylist(), encoded.indices


def _masked(indices: pa.Array, mask: np.ndarray | None) -> pa.Array:
    if mask is None:
        return indices
    return pa.array(indices.to_numpy(zero_copy_only=False), pa.int32(), mask=mask)


def _to_numpy(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.fill_null(0).to_numpy(zero_copy_only=False)


def _null_mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    if values.null_count == 0:
        return None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.is_null().to_numpy(zero_copy_only=False)
