"""Erasure (GDPR art. 17): shred the customer's data key, leave a tombstone, delete everything not kept.

In order:
1. the customer's tokens are computed (they may not be recomputable once the erasure is done);
2. the data key is deleted (crypto-shredding; the role check and its audit record are the vault's);
3. core banking records a tombstone (no PII: user id, when, who, request id, hold end, held card indexes)
   so reloads and replays cannot bring the customer back; the customer's transactions are kept under a
   legal hold (AML retention, art. 17(3)(b)) until `legal_hold_years` after the erasure, readable only
   for that purpose, then deleted by `cdp retention purge`;
4. the core-banking customer and cards, the customer's rows in the lake's `customers` and `cards` tables,
   their cards' online feature state, every export file of theirs and their e-mails in core banking's
   outbox are deleted.

Each step is idempotent, so an interrupted erasure is completed by running it again. The lake's
`transactions` table is kept: it is pseudonymous, and without the data key and the token secret nothing
links its rows back to the person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from cdp.backends import Backends
from cdp.corebanking.exportfiles import remove_customer_exports
from cdp.lake.erasure import remove_customer
from cdp.mail.outbox import remove_customer_mail
from cdp.oltp.erasures import Erasure, hold_end
from cdp.online.erasure import forget_tokens
from cdp.security.errors import CustomerErased
from cdp.security.vault import Caller
from cdp.streaming.source_cache import discard as discard_stream_source


@dataclass
class ErasureReport:
    customer_token: str
    key_deleted: bool  # False when the customer had already been erased
    core_banking_records: int  # customer + card records removed from the OLTP store
    erased_at: datetime | None = None  # of the first erasure (a repeated one keeps it)
    hold_until: date | None = None  # the held transactions are purged on or after this day
    lake_rows: int = 0  # rows removed from the lake's customers and cards tables
    online_states: int = 0  # online feature states removed
    exports: int = 0  # export files removed
    mails: int = 0  # e-mails removed from core banking's outbox


class CustomerWasErased(LookupError):
    """A request about a customer core banking holds a tombstone for: says when and by which role."""

    def __init__(self, erasure: Erasure) -> None:
        super().__init__(f"customer erased on {erasure.erased_at.date().isoformat()} by {erasure.role}")
        self.erasure = erasure


def customer_token_or_erased(b: Backends, user: int) -> str:
    """The customer's token; `CustomerWasErased` (when and by whom) once an erasure shredded it."""
    try:
        return b.protector.user_token(user)
    except CustomerErased:
        done = b.oltp.get_erasure(user)
        if done is None:
            raise
        raise CustomerWasErased(done) from None


def forget_customer(
    user: int,
    caller: Caller,
    backends: Backends | None = None,
    *,
    request_id: str | None = None,
    now: datetime | None = None,
) -> ErasureReport:
    """Erase `user`; raises AccessDenied (audited) unless the caller's role may erase.

    `request_id`: the erasure request this executes (kept in the tombstone); `now`: the erasure time
    (UTC; default: the clock)."""
    b = backends or Backends()
    token = customer_token_or_erased(b, user)
    card_indexes = tuple(c["card_index"] for c in b.oltp.list_cards(user))
    card_tokens = {b.protector.card_token(user, i) for i in card_indexes}
    deleted = b.vault.forget(token, caller)  # the role check: nothing below runs if it refuses
    b.protector.evict(token)
    at = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0, tzinfo=None)
    erasure = b.oltp.record_erasure(
        Erasure(
            user=user,
            erased_at=at,
            actor=caller.id,
            role=caller.role,
            hold_until=hold_end(at, b.settings.legal_hold_years),
            request_id=request_id,
            cards=card_indexes,
        )
    )
    removed = b.oltp.delete_customer(user)
    lake = remove_customer(b.object_store, b.settings.lake_bucket, token, b.settings.customers_k_anonymity)
    online = forget_tokens(b.online_store, {token, *card_tokens, *lake.card_tokens})
    exports = remove_customer_exports(b.settings, token)
    mails = remove_customer_mail(b.settings, token)
    discard_stream_source(b.settings.state_dir)  # the replay cache holds their source rows
    # Last, the customer's token secret: from now on no one, not even a holder of the platform token
    # key, can make their tokens from the user id and link the lake's rows back to them. (Last, so that an
    # interrupted erasure can be re-run: every step above needs the token.)
    b.protector.shred_tokens(user)
    report = ErasureReport(
        token,
        deleted,
        removed,
        erased_at=erasure.erased_at,
        hold_until=erasure.hold_until,
        lake_rows=lake.customers + lake.cards,
        online_states=online,
        exports=exports,
        mails=mails,
    )
    b.audit.append(
        actor=caller.id,
        role=caller.role,
        action="erase",
        customer_token=token,
        fields=[],
        outcome="allowed",
        details={
            "core_banking_records": removed,
            "lake_rows": report.lake_rows,
            "online_states": online,
            "exports": exports,
            "mails": mails,
            "hold_until": erasure.hold_until.isoformat(),
        },
    )
    return report
