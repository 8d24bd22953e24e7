"""Platform secrets kept as data keys: generated and wrapped by the key manager, stored in the data-key store
under a reserved id (`sys_…`), unwrapped on use. The same shape as the token key (`cdp.security.tokens`).
"""

from __future__ import annotations

from cdp.security.datakeys.port import DataKeyStore
from cdp.security.errors import KeyAccessError
from cdp.security.keys.port import KeyManager


def load_or_create_platform_key(keys: KeyManager, store: DataKeyStore, key_id: str, use: str) -> bytes:
    """The platform key `key_id` (256 bits): unwrapped from the data-key store, created there on first use.

    `use` names what the key is for; it is bound into the wrapping (encryption context), so a key wrapped
    for one use does not unwrap as another. Creation is race-free (`put_if_absent`): concurrent first
    callers all end up with the same key.
    """
    context = {"use": use, "id": key_id}
    wrapped = store.get(key_id)
    if wrapped is None:
        fresh = keys.generate_data_key(dict(context))
        if store.put_if_absent(key_id, fresh.wrapped, fresh.key_version):
            return fresh.plaintext
        wrapped = store.get(key_id)
        if wrapped is None:
            raise KeyAccessError(f"platform key entry {key_id} exists but holds no key")
    return keys.decrypt_data_key(wrapped, dict(context))
