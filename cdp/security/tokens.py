"""Keyed tokens for customer and card ids, from per-customer token secrets that erasure destroys.

Scheme (`TOKEN_SCHEME`, version 2):
- every customer has a random 256-bit token secret, wrapped by the key manager and kept in the data-key
  store under an entry id `tks_` + b32(HMAC-SHA256(token key, "token-secret:user:<id>")[:16]): finding it
  needs both the user id and the platform token key;
- `user_token` = `usr_` + b32(HMAC-SHA256(secret, "user")[:16]), `card_token` = `crd_` + the same of
  "card:<index>" (26 lowercase base32 characters after the prefix); the same secret gives the same token in
  every table and run (joinable);
- `card_order_offset` = HMAC-SHA256(secret, "order:<index>") as a number in [0, 2^30): the lake orders a
  card's rows by `event_seq` = source line + that offset, which keeps the order within the card while
  saying nothing about the source order across cards.
Erasure deletes the secret's entry (`Tokenizer.shred`, leaving the store's tombstone): from then on no
one, not even a holder of the token key, can make the customer's tokens again, so lake rows written
under them cannot be linked back to the user id. Asking for them raises `CustomerErased`.

Secrets are unwrapped once per customer per process and kept in memory (in AWS mode each unwrap is one
KMS `Decrypt` call). A shred forgets the secret in every tokenizer of its process; another process that
had already loaded it keeps making the customer's tokens until it ends (batch workers live for one run).
Version 1 tokens (HMAC of the id under the one platform key) are refused: a platform whose data-key store
still holds the version 1 key must be rebuilt (`TokenSchemeChanged`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import weakref

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cdp.security.datakeys.port import DataKeyStore
from cdp.security.errors import CustomerErased, SecurityError
from cdp.security.keys.port import KeyManager
from cdp.security.platform_keys import load_or_create_platform_key

TOKEN_SCHEME = 2
USER_PREFIX = "usr_"
CARD_PREFIX = "crd_"
SECRET_PREFIX = "tks_"  # data-key store entries holding customers' wrapped token secrets
TOKEN_LENGTH = 30
# Reserved entry of the data-key store holding the wrapped platform token key (version 2: it only finds
# customers' secrets). The version 1 entry, whose key made the tokens themselves, marks an old platform.
TOKEN_KEY_ID = "sys_token_key_v2"
LEGACY_TOKEN_KEY_ID = "sys_token_hmac"
# event_seq = source line + card offset must stay below 2^31 (features.render packs it into a BIGINT with
# the epoch second): offsets are below 2^30 and so must source lines be.
ORDER_OFFSET_BITS = 30
MAX_SOURCE_LINE = (1 << 30) - 1
_REBUILD = (
    "this platform's keys, lake and stream use token scheme 1 (tokens made from user ids with one platform "
    f"key); this version uses scheme {TOKEN_SCHEME} (per-customer token secrets): rebuild them from the "
    "source files under a new CDP_HOME (in AWS: new tables, bucket and stream)"
)
_USER_TOKEN = re.compile(r"^usr_[a-z2-7]{26}$")


# Every tokenizer of this process: a shred forgets the customer in all of them at once, so no other
# tokenizer of the process (e.g. a batch worker's, reused across runs) keeps making the erased tokens.
_TOKENIZERS: weakref.WeakSet[Tokenizer] = weakref.WeakSet()


class TokenSchemeChanged(SecurityError):
    """The platform's keys, lake and stream were made with another token scheme: they must be rebuilt."""


def is_user_token(value: object) -> bool:
    """True if `value` has the shape of a customer token."""
    return isinstance(value, str) and _USER_TOKEN.match(value) is not None


def load_or_create_token_key(keys: KeyManager, store: DataKeyStore) -> bytes:
    """The platform's token key (a platform key, `cdp.security.platform_keys`), created on first use.

    `TokenSchemeChanged` when the store holds the version 1 token key (a platform built before scheme 2).
    """
    if store.get(TOKEN_KEY_ID) is None and store.get(LEGACY_TOKEN_KEY_ID) is not None:
        raise TokenSchemeChanged(_REBUILD)
    return load_or_create_platform_key(keys, store, TOKEN_KEY_ID, "token-key")


def _b32(digest: bytes) -> str:
    return base64.b32encode(digest[:16]).decode("ascii").rstrip("=").lower()


def _secret_context(entry: str) -> dict[str, str]:
    return {"use": "token-secret", "id": entry}


class Tokenizer:
    """Keyed tokens for user ids and (user, card index) pairs, scalar and vectorised, from each customer's
    token secret (created on first use; `CustomerErased` once shredded)."""

    def __init__(self, token_key: bytes, keys: KeyManager, store: DataKeyStore) -> None:
        if len(token_key) < 32:
            raise ValueError("token key must be at least 256 bits")
        self._key = bytes(token_key)
        self._keys = keys
        self._store = store
        self._secrets: dict[int, bytes | None] = {}  # unwrapped secrets; None: the customer was erased
        self._users: dict[int, str] = {}
        self._cards: dict[tuple[int, int], tuple[str, int]] = {}  # (card token, order offset)
        _TOKENIZERS.add(self)

    # -- secrets -----------------------------------------------------------------------------------
    def secret_entry(self, user: int) -> str:
        """The data-key store entry holding `user`'s wrapped token secret (needs the id and the key)."""
        return SECRET_PREFIX + _b32(
            hmac.digest(self._key, f"token-secret:user:{int(user)}".encode("ascii"), hashlib.sha256)
        )

    def _secret(self, user: int) -> bytes:
        secret = self._secrets.get(user, b"")
        if secret == b"":
            secret = self._secrets[user] = self._load_or_create_secret(self.secret_entry(user))
        if secret is None:
            raise CustomerErased(self.secret_entry(user))
        return secret

    def _load_or_create_secret(self, entry: str) -> bytes | None:
        """The unwrapped secret of a store entry, created when the entry does not exist; None if erased."""
        context = _secret_context(entry)
        wrapped = self._store.get(entry)
        if wrapped is None:
            if self._store.is_erased(entry):
                return None
            fresh = self._keys.generate_data_key(context)
            if self._store.put_if_absent(entry, fresh.wrapped, fresh.key_version, context=context):
                return fresh.plaintext
            wrapped = self._store.get(entry)  # another writer created it first (or erased it): theirs
            if wrapped is None:
                return None
        return self._keys.decrypt_data_key(wrapped, context)

    def is_erased(self, user: int) -> bool:
        """True if `user`'s token secret was shredded (a customer met for the first time gets one)."""
        try:
            self._secret(int(user))
        except CustomerErased:
            return True
        return False

    def shred(self, user: int) -> bool:
        """Delete `user`'s token secret for good (the store keeps a tombstone) and forget it in this
        process; True if a live secret was deleted. Their tokens cannot be made again by anyone."""
        user = int(user)
        entry = self.secret_entry(user)
        deleted = self._store.delete(entry)
        for tokenizer in list(_TOKENIZERS):
            if tokenizer.secret_entry(user) == entry:  # the same platform token key
                tokenizer._forget(user)
        return deleted

    def _forget(self, user: int) -> None:
        self._secrets[user] = None
        self._users.pop(user, None)
        for key in [k for k in self._cards if k[0] == user]:
            del self._cards[key]

    # -- tokens ------------------------------------------------------------------------------------
    def user_token(self, user: int) -> str:
        """`usr_…` token of a user id; `CustomerErased` if the customer was erased."""
        user = int(user)
        tok = self._users.get(user)
        if tok is None:
            tok = self._users[user] = USER_PREFIX + _b32(
                hmac.digest(self._secret(user), b"user", hashlib.sha256)
            )
        return tok

    def _card(self, user: int, card_index: int) -> tuple[str, int]:
        key = (int(user), int(card_index))
        made = self._cards.get(key)
        if made is None:
            secret = self._secret(key[0])
            token = CARD_PREFIX + _b32(hmac.digest(secret, f"card:{key[1]}".encode("ascii"), hashlib.sha256))
            order = hmac.digest(secret, f"order:{key[1]}".encode("ascii"), hashlib.sha256)
            offset = int.from_bytes(order[:8], "big") >> (64 - ORDER_OFFSET_BITS)
            made = self._cards[key] = (token, offset)
        return made

    def card_token(self, user: int, card_index: int) -> str:
        """`crd_…` token of a card (user id + card index within the user)."""
        return self._card(user, card_index)[0]

    def card_order_offset(self, user: int, card_index: int) -> int:
        """The card's keyed offset in [0, 2^30), added to its rows' source lines to make `event_seq`."""
        return self._card(user, card_index)[1]

    def erased_rows(self, users: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
        """True for each row whose user was erased (null users: False); None when no row's user was."""
        distinct, indices, mask = _distinct_present(_to_numpy(users), _null_mask(users))
        erased = np.array([u is not None and self.is_erased(u) for u in distinct], dtype=bool)
        if not erased.any():
            return None
        rows = erased[indices.to_numpy(zero_copy_only=False)]
        return rows if mask is None else (rows & ~mask)

    def user_tokens(self, users: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Tokens for an integer column (one HMAC per distinct id; nulls stay null); `CustomerErased` if
        a user was erased (`erased_rows` finds their rows, to leave them out first)."""
        distinct, indices, mask = _distinct_present(_to_numpy(users), _null_mask(users))
        dictionary = pa.array([None if u is None else self.user_token(u) for u in distinct], pa.string())
        return pc.take(dictionary, _masked(indices, mask))

    def card_tokens(self, users: pa.Array | pa.ChunkedArray, cards: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Tokens for (user, card index) column pairs (one HMAC per distinct card)."""
        combined = _to_numpy(users).astype(np.int64) * 256 + _to_numpy(cards).astype(np.int64)
        mask = _null_mask(users)
        card_mask = _null_mask(cards)
        if card_mask is not None:
            mask = card_mask if mask is None else (mask | card_mask)
        distinct, indices, mask = _distinct_present(combined, mask)
        dictionary = pa.array(
            [None if c is None else self.card_token(c // 256, c % 256) for c in distinct], pa.string()
        )
        return pc.take(dictionary, _masked(indices, mask))


def _distinct(ids: np.ndarray) -> tuple[list[int], pa.Array]:
    """Distinct values of `ids` (first-seen order) and each row's index into them (hashing, no sort)."""
    encoded = pc.dictionary_encode(pa.array(ids))
    return encoded.dictionary.to_pylist(), encoded.indices


def _distinct_present(
    ids: np.ndarray, mask: np.ndarray | None
) -> tuple[list[int | None], pa.Array, np.ndarray | None]:
    """`_distinct` where a value met only on masked (null) rows is None: no token or secret is made for
    the filler value nulls were read as."""
    distinct, indices = _distinct(ids)
    if mask is not None:
        used = np.zeros(len(distinct), dtype=bool)
        used[indices.to_numpy(zero_copy_only=False)[~mask]] = True
        distinct = [v if used[i] else None for i, v in enumerate(distinct)]
    return distinct, indices, mask


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
