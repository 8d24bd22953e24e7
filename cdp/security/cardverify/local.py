"""Local card verifier: a software HSM recomputing CVVs under a card-verification key (CVK).

The CVK is a 256-bit data key generated and wrapped by the key manager and kept in the data-key store
under the reserved id `sys_card_verification_key` (context `{"use": "card-verification", ...}`); it is
unwrapped only in memory. The computation has the shape of the card schemes' CVV method (a keyed MAC of
PAN | expiry YYMM | service code, decimalised to 3 digits), with HMAC-SHA256 as the MAC: it is not Visa's
3DES algorithm, so CVVs issued by another system (the IBM files' random ones) do not verify here, as they
would not against any other issuer's key.

Decimalisation (as in the CVV method): the MAC's hex digits 0-9 are taken in order, then, if fewer than
three, its digits A-F as 0-5; the first three make the CVV.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

from cdp.security.cardverify.port import (
    CVV2_SERVICE_CODE,
    CVV_LENGTH,
    CardDataError,
    check_card_data,
    is_cvv_shaped,
)
from cdp.security.datakeys.port import DataKeyStore
from cdp.security.keys.port import KeyManager
from cdp.security.platform_keys import load_or_create_platform_key

CVK_ID = "sys_card_verification_key"  # reserved entry of the data-key store holding the wrapped CVK
CVK_USE = "card-verification"


def load_or_create_cvk(keys: KeyManager, store: DataKeyStore) -> bytes:
    """The issuer's CVK, unwrapped from the data-key store (created there on first use)."""
    return load_or_create_platform_key(keys, store, CVK_ID, CVK_USE)


def decimalise(hex_digits: str, length: int = CVV_LENGTH) -> str:
    """The first `length` decimal digits of `hex_digits`, then its A-F digits as 0-5 if short."""
    digits = [c for c in hex_digits if c in "0123456789"]
    if len(digits) < length:
        digits += [str(int(c, 16) - 10) for c in hex_digits if c not in "0123456789"]
    return "".join(digits[:length])


class SoftwareHsm:
    """`CardVerifier` computing CVVs in process under a CVK it holds only in memory."""

    def __init__(self, cvk: bytes) -> None:
        if len(cvk) < 32:
            raise ValueError("the card-verification key must be at least 256 bits")
        self._cvk = bytes(cvk)

    @classmethod
    def from_keys(cls, keys: KeyManager, store: DataKeyStore) -> SoftwareHsm:
        """The software HSM over the platform's CVK."""
        return cls(load_or_create_cvk(keys, store))

    def __repr__(self) -> str:  # never print key material
        return "SoftwareHsm(cvk=<hidden>)"

    def _cvv(self, pan: str, yymm: str, service_code: str) -> str:
        mac = hmac.digest(self._cvk, f"{pan}|{yymm}|{service_code}".encode("ascii"), hashlib.sha256)
        return decimalise(mac.hex())

    def generate(self, pan: str, expiry: date, service_code: str = CVV2_SERVICE_CODE) -> str:
        return self._cvv(pan, check_card_data(pan, expiry, service_code), service_code)

    def verify(self, pan: str, expiry: date, cvv: str, service_code: str = CVV2_SERVICE_CODE) -> bool:
        if not is_cvv_shaped(cvv):
            return False
        try:
            expected = self.generate(pan, expiry, service_code)
        except CardDataError:
            return False
        return hmac.compare_digest(expected.encode("ascii"), cvv.encode("ascii"))
