"""Checking a card's CVV the way an issuer does: recompute it, never look it up.

Core banking gives the PAN (decrypted here, for this check only) and the expiry; the card verifier (a
software HSM locally, AWS Payment Cryptography in AWS) recomputes the CVV under the issuer's
card-verification key and compares in constant time. CVVs in the IBM files were issued by another
system, so they do not verify against this issuer's key; `issue_card_cvv` gives the CVV to print on a
card this issuer produces.
"""

from __future__ import annotations

from cdp.backends import Backends
from cdp.corebanking.cards import decrypt_pan
from cdp.security.cardverify.port import CVV2_SERVICE_CODE
from cdp.security.errors import CustomerErased


def _pan_and_expiry(b: Backends, user: int, card_index: int):  # noqa: ANN202 - (str, date) or None
    card = b.oltp.get_card(user, card_index)
    if card is None or card["card_number_enc"] is None or card["expires"] is None:
        return None
    try:
        pan = decrypt_pan(b.keys, b.data_keys, b.protector.user_token(user), card["card_number_enc"])
    except CustomerErased:
        return None
    return pan, card["expires"]


def verify_card_cvv(
    user: int,
    card_index: int,
    cvv: str,
    backends: Backends | None = None,
    service_code: str = CVV2_SERVICE_CODE,
) -> bool:
    """Whether `cvv` is the CVV of `user`'s card `card_index`; False for an unknown or erased card."""
    b = backends or Backends()
    found = _pan_and_expiry(b, user, card_index)
    if found is None:
        return False
    pan, expires = found
    return b.card_verifier.verify(pan, expires, cvv, service_code)


def issue_card_cvv(
    user: int, card_index: int, backends: Backends | None = None, service_code: str = CVV2_SERVICE_CODE
) -> str:
    """The CVV to print on the card (card production); LookupError for an unknown or erased card."""
    b = backends or Backends()
    found = _pan_and_expiry(b, user, card_index)
    if found is None:
        raise LookupError(f"no card {card_index} of customer {b.protector.user_token(user)} in core banking")
    pan, expires = found
    return b.card_verifier.generate(pan, expires, service_code)
