"""`cdp load DIR`: customers (with PII and e-mail) and cards into the OLTP store.

Cards are stored without their CVV and with the PAN encrypted under the customer's data key plus its last
four digits (`cdp.corebanking.cards`); a store written by an earlier release is migrated first. Idempotent:
the store upserts by user and by (user, card index). Rows that fail validation go to the quarantine like
everywhere else; so do the users-file and cards-file rows of an erased customer (core banking holds their
tombstone), with the reason "erased" and nothing of the row: a reload never brings an erased customer back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdp.backends import Backends
from cdp.corebanking.cards import card_for_store
from cdp.corebanking.migrate import migrate_core_banking
from cdp.corebanking.tombstones import erased_users, quarantine_erased
from cdp.ibm.contacts import read_contacts
from cdp.ibm.quarantine import Quarantine
from cdp.ibm.reader import find_source_files, read_cards, read_users

_PAGE = 2_000


@dataclass
class LoadReport:
    customers: int
    cards: int
    quarantined: int
    with_email: int
    erased: int = 0  # rows of erased customers (users + cards) quarantined instead of loaded
    migrated_cards: int = 0  # old-format cards migrated first (CVV and clear PAN removed)


def load_core_banking(source_dir: Path, backends: Backends | None = None) -> LoadReport:
    b = backends or Backends()
    found = find_source_files(source_dir)
    if found.users is None or found.cards is None:
        raise FileNotFoundError(f"{source_dir}: need sd254_users.csv and sd254_cards.csv")
    migrated = migrate_core_banking(b).cards
    with Quarantine(b.settings.state_dir / "load-quarantine") as quarantine:
        users = read_users(found.users, quarantine)
        contacts = read_contacts(source_dir, quarantine)
        if contacts is not None:
            users = users.join(contacts, "user", join_type="left outer").sort_by("user")
        cards = read_cards(found.cards, quarantine, known_users=set(users["user"].to_pylist()))
        erased = erased_users(b.oltp)
        before = quarantine.total
        users = quarantine_erased(users, erased, quarantine, found.users.name)
        cards = quarantine_erased(cards, erased, quarantine, found.cards.name)
        erased_rows = quarantine.total - before
        quarantined = quarantine.total
    with_email = users.num_rows - users["email"].null_count if "email" in users.column_names else 0
    for batch in users.to_batches(_PAGE):
        b.oltp.upsert_customers(batch.to_pylist())
    for batch in cards.to_batches(_PAGE):
        b.oltp.upsert_cards([card_for_store(b.protector, row) for row in batch.to_pylist()])
    return LoadReport(users.num_rows, cards.num_rows, quarantined, with_email, erased_rows, migrated)
