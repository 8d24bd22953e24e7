"""The card-verification port: CVV generation and verification as an issuer's HSM does them.

Nobody stores a CVV (PCI DSS forbids keeping it after authorisation, even encrypted or hashed): the
issuer recomputes it from the PAN, the expiry and the service code under a secret card-verification key
(CVK) and compares. Service code "000" gives the CVV2 printed on the card's back (the default), "999" the
iCVV of the chip, the magnetic stripe's own code its CVV1. Adapters: `local` (a software HSM) and `aws`
(AWS Payment Cryptography). Inputs are never echoed in errors.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Protocol, runtime_checkable

CVV2_SERVICE_CODE = "000"
CVV_LENGTH = 3
_PAN = re.compile(r"^[0-9]{12,19}$")
_SERVICE_CODE = re.compile(r"^[0-9]{3}$")
_CVV = re.compile(r"^[0-9]{3}$")


class CardDataError(ValueError):
    """A PAN, expiry or service code of the wrong shape (the message names the field, not the value)."""


@runtime_checkable
class CardVerifier(Protocol):
    """Generates and verifies card verification values under the issuer's CVK."""

    def generate(self, pan: str, expiry: date, service_code: str = CVV2_SERVICE_CODE) -> str:
        """The 3-digit CVV of the card (for card production); `CardDataError` on malformed input."""
        ...

    def verify(self, pan: str, expiry: date, cvv: str, service_code: str = CVV2_SERVICE_CODE) -> bool:
        """Whether `cvv` is the card's CVV; False (never an error) for any malformed input."""
        ...


def expiry_yymm(expiry: date) -> str:
    """The expiry as the 4 digits YYMM both adapters feed the algorithm (one format for both ways)."""
    if not isinstance(expiry, date):
        raise CardDataError("card expiry must be a date")
    return f"{expiry.year % 100:02d}{expiry.month:02d}"


def check_card_data(pan: str, expiry: date, service_code: str) -> str:
    """Validate the inputs of a CVV computation; returns the expiry as YYMM."""
    if not isinstance(pan, str) or not _PAN.match(pan):
        raise CardDataError("card number must be 12 to 19 digits")
    if not isinstance(service_code, str) or not _SERVICE_CODE.match(service_code):
        raise CardDataError("service code must be 3 digits")
    return expiry_yymm(expiry)


def is_cvv_shaped(cvv: object) -> bool:
    """True for a string of exactly 3 digits."""
    return isinstance(cvv, str) and _CVV.match(cvv) is not None
