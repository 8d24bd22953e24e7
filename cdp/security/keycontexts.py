"""The encryption context of a data-key store entry, for entries written before contexts were stored.

Every writer now stores the context beside the wrapped key (`DataKeyStore.put_if_absent(..., context=)`),
and that stored context always wins. Older entries still in use were written by one rule: a customer's
field key (`usr_...` id, `fieldcrypto.data_key_context`); platform keys have always stored theirs.
An entry with neither a stored context nor a rule here cannot be re-wrapped; rotation reports it.
"""

from __future__ import annotations

from cdp.security.datakeys.port import StoredKey
from cdp.security.fieldcrypto import data_key_context
from cdp.security.tokens import is_user_token


def entry_context(entry: StoredKey) -> dict[str, str] | None:
    """The context bound to `entry`'s wrapped key: stored, else from the known rules, else None."""
    if entry.context is not None:
        return dict(entry.context)
    if is_user_token(entry.entry_id):
        return data_key_context(entry.entry_id)
    return None
