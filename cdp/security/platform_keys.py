"""Platform keys held wrapped in the data-key store under reserved ids (token key, audit keys, ...).

A platform key is a data key from the key manager, bound to the encryption context
`{"use": <use>, "id": <key id>}` and stored wrapped in the data-key store under `key_id` (a reserved id
that can never be a customer token). It is unwrapped in memory only.
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


def load_or_create(keys: KeyManager, store: DataKeyStore, key_id: str, use: str) -> PlatformKey:
    """The key stored under `key_id`, unwrapped; generated and stored on first use.

    Creation is race-free (`put_if_absent`): concurrent first callers all end up with the same key, and
    exactly one of them sees `created=True`.
    """
    context = {"use": use, "id": key_id}
    wrapped = store.get(key_id)
    if wrapped is None:
        fresh = keys.generate_data_key(dict(context))
        if store.put_if_absent(key_id, fresh.wrapped, fresh.key_version):
            return PlatformKey(fresh.plaintext, created=True)
        wrapped = store.get(key_id)
        if wrapped is None:
            raise KeyAccessError(f"platform key entry {key_id} exists but holds no key")
    return PlatformKey(keys.decrypt_data_key(wrapped, dict(context)), created=False)
