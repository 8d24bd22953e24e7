"""Erasure (GDPR art. 17): crypto-shred the customer's data key and delete their core-banking record.

After it, every ciphertext of the customer (lake, stream, backups) is undecryptable, analytics on the
token keep working, and jobs re-run over old source files write nulls instead of their identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.backends import Backends
from cdp.security.vault import Caller


@dataclass
class ErasureReport:
    customer_token: str
    key_deleted: bool  # False when the customer had already been erased
    core_banking_records: int  # customer + card records removed from the OLTP store


def forget_customer(user: int, caller: Caller, backends: Backends | None = None) -> ErasureReport:
    """Erase `user`; raises AccessDenied (audited) unless the caller's role may erase."""
    b = backends or Backends()
    token = b.protector.user_token(user)
    deleted = b.vault.forget(token, caller)
    b.protector.evict(token)
    removed = b.oltp.delete_customer(user)
    # Token erasure: delete the customer's token secret (after the last use of their token above), so
    # that no one, not even a holder of the platform token key, can make their tokens from the user id
    # again and link the lake's rows back to them.
    b.protector.shred_tokens(user)
    return ErasureReport(token, deleted, removed)
