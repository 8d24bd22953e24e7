"""Remove an erased customer's online feature state (their cards' and their own keys) at erasure.

Online keys are `<view>#<entity token>` (a card token for event views, a user token for as-of views), so
the keys to delete are those whose part after the last `#` is one of the customer's tokens.
"""

from __future__ import annotations

from collections.abc import Iterable

from cdp.online.port import OnlineStore


def forget_tokens(store: OnlineStore, tokens: Iterable[str]) -> int:
    """Delete every state keyed by one of `tokens` and make it durable; returns how many were deleted."""
    wanted = set(tokens)
    if not wanted:
        return 0
    keys = [k for k in store.keys() if k.rpartition("#")[2] in wanted]
    if keys:
        store.delete_many(keys)
        store.snapshot()
    return len(keys)
