"""The encryption context of a data-key store entry, for entries written before contexts were stored.

Every writer now stores the context beside the wrapped key (`DataKeyStore.put_if_absent(..., context=)`),
and that stored context always wins. Older entries were written by two rules only: a customer's field key
(`usr_...` id, `fieldcrypto.data_key_context`) and the platform token key (`tokens.TOKEN_KEY_ID`).
An entry with neither a stored context nor a rule here cannot be re-wrapped; rotation reports it.
"""

from __future__ import annotations

from cdp.security.datakeys.port import StoredKey
from cdp.security.fieldcrypto import data_key_context
from cdp.security.tokens import _TOKEN_KEY_CONTEXT, TOKEN_KEY_ID, is_user_token


def entry_context(entry: StoredKey) -> dict[str, str] | None:
    """The context bound to `entry`'s wrapped key: stored, else from the known rules, else None."""
    if entry.context is not None:
        return dict(entry.context)
    if entry.entry_id == TOKEN_KEY_ID:
        return dict(_TOKEN_KEY_CONTEXT)
    if is_user_token(entry.entry_id):
        return data_key_context(entry.entry_id)
    return None
