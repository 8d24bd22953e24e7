"""Platform keys held wrapped in the data-key store under reserved ids (token key, audit keys, CVK, ...).

A platform key is a data key from the key manager, bound to the encryption context
`{"use": <use>, "id": <key id>}` and stored wrapped in the data-key store under `key_id`, a reserved id
starting with `sys_` (never a customer token's `usr_`), so a key stored under one id cannot be unwrapped
as another. It is unwrapped in memory only.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.security.datakeys.port import DataKeyStore
from cdp.security.errors import KeyAccessError
from cdp.security.keys.port import KeyManager


@dataclass(frozen=True)
class PlatformKey:
    """An unwrapped platform key; `created` is True if this call generated and stored it."""

    key: bytes
    created: bool

    def __repr__(self) -> str:  # never print key material
        return f"PlatformKey(created={self.created}, {len(self.key)} bytes)"


def platform_key_context(key_id: str, use: str) -> dict[str, str]:
    """The encryption context of a platform key."""
    return {"use": use, "id": key_id}


def load_or_create(keys: KeyManager, store: DataKeyStore, key_id: str, use: str) -> PlatformKey:
    """The key stored under `key_id`, unwrapped; generated and stored on first use.

    Creation is race-free (`put_if_absent`): concurrent first callers all end up with the same key, and
    exactly one of them sees `created=True`.
    """
    if not key_id.startswith("sys_"):
        raise ValueError("platform key ids start with 'sys_'")
    context = platform_key_context(key_id, use)
    wrapped = store.get(key_id)
    if wrapped is None:
        fresh = keys.generate_data_key(dict(context))
        if store.put_if_absent(key_id, fresh.wrapped, fresh.key_version, context=context):
            return PlatformKey(fresh.plaintext, created=True)
        wrapped = store.get(key_id)
        if wrapped is None:
            raise KeyAccessError(f"platform key entry {key_id} exists but holds no key")
    return PlatformKey(keys.decrypt_data_key(wrapped, dict(context)), created=False)


def load_or_create_platform_key(keys: KeyManager, store: DataKeyStore, key_id: str, use: str) -> bytes:
    """The bytes of `load_or_create(...)`: for callers that do not care who created the key."""
    return load_or_create(keys, store, key_id, use).key
