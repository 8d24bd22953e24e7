"""Platform secrets kept as data keys: generated and wrapped by the key manager, stored in the data-key
store under a reserved id (the pattern of the token key in `cdp.security.tokens`).

The wrapped key is bound to the encryption context `{"use": <use>, "id": <key id>}`, so a key stored
under one reserved id cannot be unwrapped as another. Reserved ids start with `sys_`, never a customer
token's `usr_`.
"""

from __future__ import annotations

from cdp.security.datakeys.port import DataKeyStore
from cdp.security.errors import KeyAccessError
from cdp.security.keys.port import KeyManager


def platform_key_context(key_id: str, use: str) -> dict[str, str]:
    """The encryption context of a platform key."""
    return {"use": use, "id": key_id}


def load_or_create_platform_key(keys: KeyManager, store: DataKeyStore, key_id: str, use: str) -> bytes:
    """The platform key `key_id`: unwrapped from the data-key store, created there on first use.

    Creation is race-free (`put_if_absent`): concurrent first callers all end up with the same key.
    """
    if not key_id.startswith("sys_"):
        raise ValueError("platform key ids start with 'sys_'")
    context = platform_key_context(key_id, use)
    wrapped = store.get(key_id)
    if wrapped is None:
        fresh = keys.generate_data_key(dict(context))
        if store.put_if_absent(key_id, fresh.wrapped, fresh.key_version):
            return fresh.plaintext
        wrapped = store.get(key_id)
        if wrapped is None:
            raise KeyAccessError(f"platform key entry {key_id} exists but holds no key")
    return keys.decrypt_data_key(wrapped, dict(context))
