"""`cdp migrate-core-banking` (also run by `cdp load` first): bring a store written by an earlier release
to the current card format.

Earlier releases stored each card's CVV and clear PAN. The migration reads the old cards' PANs, encrypts
them the way the loader does (`cdp.corebanking.cards`), and has the store remove every CVV and clear PAN
for good (SQLite: table rebuilt, secure delete, VACUUM, WAL truncated; DynamoDB: attributes removed item by
item). Idempotent: a migrated store has nothing left to migrate.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.backends import Backends
from cdp.corebanking.cards import protect_pan


@dataclass
class MigrationReport:
    cards: int  # cards rewritten without CVV and clear PAN (0: nothing to migrate)


def migrate_core_banking(backends: Backends | None = None) -> MigrationReport:
    """Migrate the core-banking store's cards to the current format (a no-op when already migrated)."""
    b = backends or Backends()
    protected = [
        {
            "user": c["user"],
            "card_index": c["card_index"],
            **protect_pan(b.protector, c["user"], c["card_number"]),
        }
        for c in b.oltp.legacy_cards()
    ]
    return MigrationReport(cards=b.oltp.migrate_cards(protected))
