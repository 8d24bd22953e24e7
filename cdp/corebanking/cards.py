"""Cards as core banking keeps them (PCI DSS): no CVV in any form, the PAN encrypted.

The loader and the migration turn a cards-file row into the stored card here, so the store itself never
holds a key: the PAN becomes `card_number_enc` (AES-256-GCM under the customer's data key, field
"card_number": the lake's format, so erasing the customer crypto-shreds core banking's copy too) and
`pan_last4`; the CVV is dropped. `decrypt_pan` opens a stored PAN for core banking's own checks (CVV
verification) and nothing else: no role of the vault may decrypt a full PAN.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cdp.oltp.records import CARD_SOURCE_ONLY
from cdp.security.datakeys.port import DataKeyStore
from cdp.security.errors import CustomerErased, KeyAccessError
from cdp.security.fieldcrypto import associated_data, data_key_context, split
from cdp.security.keys.port import KeyManager
from cdp.security.protector import Protector

PAN_FIELD = "card_number"


def protect_pan(protector: Protector, user: int, pan: str | None) -> dict[str, str | None]:
    """`card_number_enc` and `pan_last4` of a PAN; both None for a customer who was erased."""
    try:
        enc = protector.encrypt_field(protector.user_token(user), PAN_FIELD, pan)
    except CustomerErased:
        return {"card_number_enc": None, "pan_last4": None}
    return {"card_number_enc": enc, "pan_last4": pan[-4:] if pan else None}


def card_for_store(protector: Protector, row: Mapping[str, Any]) -> dict[str, Any]:
    """A cards-file row (clean names) -> the core-banking card: CVV and clear PAN dropped, PAN encrypted."""
    out = {k: v for k, v in row.items() if k not in CARD_SOURCE_ONLY}
    out.update(protect_pan(protector, row["user"], row.get("card_number")))
    return out


def decrypt_pan(keys: KeyManager, store: DataKeyStore, customer_token: str, card_number_enc: str) -> str:
    """The clear PAN of a stored card, for a check inside core banking only (never returned to a caller).

    Raises `CustomerErased` once the customer's data key is gone, `KeyAccessError` if it does not open.
    """
    wrapped = store.get(customer_token)
    if wrapped is None:
        if store.is_erased(customer_token):
            raise CustomerErased(customer_token)
        raise KeyAccessError(f"no data key for customer {customer_token}")
    aead = AESGCM(keys.decrypt_data_key(wrapped, data_key_context(customer_token)))
    try:
        nonce, sealed = split(card_number_enc)
        return aead.decrypt(nonce, sealed, associated_data(customer_token, PAN_FIELD)).decode("ascii")
    except (ValueError, InvalidTag):
        raise KeyAccessError(
            f"card number does not decrypt for customer {customer_token}: written for another one, or altered"
        ) from None
