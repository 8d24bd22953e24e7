"""Who may decrypt which protected fields, and who may erase a customer.

- fraud-ops: contact fields and the card context an alert needs (name, e-mail, address, apartment,
  card expiry); the card's last four digits are already clear in `pan_last4`.
- marketing: name and e-mail only.
- data-scientist: nothing, ever.
- privacy-officer: may erase a customer (crypto-shredding), decrypts nothing.
No role may decrypt a full card number: PANs never leave core banking in clear.
"""

from __future__ import annotations

REVEAL_FIELDS: dict[str, frozenset[str]] = {
    "fraud-ops": frozenset({"person", "email", "address", "apartment", "expires"}),
    "marketing": frozenset({"person", "email"}),
    "data-scientist": frozenset(),
    "privacy-officer": frozenset(),
}
ERASE_ROLES = frozenset({"privacy-officer"})


def allowed_fields(role: str) -> frozenset[str]:
    """The fields `role` may decrypt (empty for unknown roles)."""
    return REVEAL_FIELDS.get(role, frozenset())


def may_erase(role: str) -> bool:
    return role in ERASE_ROLES
