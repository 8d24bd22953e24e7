"""Access request (GDPR art. 15): everything held about one customer, in clear, in one JSON file.

Sources: the core-banking record and cards (no CVV: core banking never stores one; the card number is
given as its last four digits), the core-banking transactions, and what the lake holds under the
customer's token (profile attributes and transactions). Only a privacy officer may run it; every attempt is
audited. The file is written with mode 0600 under `$CDP_HOME/exports/` and does not stay: expired exports
(`export_ttl_days`) are removed at the start of every export, and all of a customer's at their erasure.
A request about an erased customer writes nothing: it raises `CustomerWasErased` ("customer erased on
DATE by ROLE"), audited with outcome "rejected". Held (legal-hold) transactions are never exported.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdp.backends import Backends
from cdp.corebanking.erasure import CustomerWasErased
from cdp.corebanking.exportfiles import export_path, remove_expired
from cdp.security.errors import AccessDenied
from cdp.security.vault import Caller

EXPORT_ROLES = frozenset({"privacy-officer"})
ERASED_CUSTOMER = "-"  # the audit's customer token for an erased customer (their token is not recomputed)


def export_customer(user: int, caller: Caller, backends: Backends | None = None) -> Path:
    """Write the customer's access-request file; `CustomerWasErased` (no file) for an erased customer."""
    b = backends or Backends()
    erasure = b.oltp.get_erasure(user)
    token = ERASED_CUSTOMER if erasure is not None else b.protector.user_token(user)
    audit = {"actor": caller.id, "role": caller.role, "action": "export", "customer_token": token}
    if caller.role not in EXPORT_ROLES:
        b.audit.append(**audit, fields=[], outcome="denied", details={"reason": "role may not export"})
        raise AccessDenied(f"role {caller.role!r} may not export customer data (customer {token})")
    remove_expired(b.settings)
    if erasure is not None:
        refused = CustomerWasErased(erasure)
        details = {"reason": str(refused), "hold_until": erasure.hold_until.isoformat()}
        b.audit.append(**audit, fields=[], outcome="rejected", details=details)
        raise refused
    customer = b.oltp.get_customer(user)
    cards = b.oltp.list_cards(user)
    for card in cards:
        card.pop("card_number_enc", None)  # core banking keeps the PAN encrypted; the last four suffice here
        card["card_number_last4"] = card.pop("pan_last4", None)
    core_txns = [t for c in cards for t in b.oltp.transactions_for_card(user, c["card_index"])]
    lake: dict[str, Any] = {}
    for table, column in (
        ("customers", "user_token"),
        ("cards", "user_token"),
        ("transactions", "user_token"),
    ):
        try:
            rows = b.catalog.query(f"SELECT * FROM {table} WHERE {column} = '{token}'").to_pylist()
        except Exception:  # noqa: BLE001 - a table not built yet is simply absent from the export
            rows = []
        # Ciphertext columns are dropped: the clear values are in the core-banking part above.
        lake[table] = [{k: v for k, v in r.items() if not k.endswith("_enc")} for r in rows]
    document = {
        "customer_token": token,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "core_banking": {"customer": customer, "cards": cards, "transactions": core_txns},
        "lake": lake,
    }
    path = export_path(b.settings, token)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, indent=2, default=str)
    counts = {
        "cards": len(cards),
        "core_transactions": len(core_txns),
        **{k: len(v) for k, v in lake.items()},
    }
    b.audit.append(**audit, fields=["all"], outcome="allowed", details=counts)
    return path
