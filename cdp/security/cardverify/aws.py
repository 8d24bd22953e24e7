"""AWS card verifier: AWS Payment Cryptography's data plane (`payment-cryptography-data`).

`GenerateCardValidationData` / `VerifyCardValidationData` under the CVK named by
`CDP_CARD_VERIFICATION_KEY_ARN` (a key ARN or `alias/...`; key usage TR31_C0_CARD_VERIFICATION_KEY,
modes Generate and Verify). Service code "000" is sent as `CardVerificationValue2` (the CVV2 attributes:
expiry only, the service fixes the code at 000); any other code as `CardVerificationValue1`. The expiry
is sent as YYMM, the same way for generation and verification. A CVV that does not match comes back as
`VerificationFailedException`, which is `False` here; every other error is raised.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from botocore.exceptions import ClientError

from cdp.security.cardverify.port import (
    CVV2_SERVICE_CODE,
    CVV_LENGTH,
    CardDataError,
    check_card_data,
    is_cvv_shaped,
)
from cdp.settings import Settings

SERVICE = "payment-cryptography-data"


def card_attributes(yymm: str, service_code: str) -> dict[str, Any]:
    """The `GenerationAttributes` / `VerificationAttributes` of a CVV computation."""
    if service_code == CVV2_SERVICE_CODE:
        return {"CardVerificationValue2": {"CardExpiryDate": yymm}}
    return {"CardVerificationValue1": {"CardExpiryDate": yymm, "ServiceCode": service_code}}


class PaymentCryptographyVerifier:
    """`CardVerifier` over AWS Payment Cryptography: the CVK never leaves the service's HSMs."""

    def __init__(self, client: Any, key_arn: str) -> None:
        self._client = client
        self.key_arn = key_arn

    @classmethod
    def from_settings(cls, settings: Settings) -> PaymentCryptographyVerifier:
        from cdp.aws_clients import aws_client

        client = aws_client(settings, SERVICE)
        return cls(client, settings.card_verification_key_arn)

    def generate(self, pan: str, expiry: date, service_code: str = CVV2_SERVICE_CODE) -> str:
        yymm = check_card_data(pan, expiry, service_code)
        response = self._client.generate_card_validation_data(
            KeyIdentifier=self.key_arn,
            PrimaryAccountNumber=pan,
            GenerationAttributes=card_attributes(yymm, service_code),
            ValidationDataLength=CVV_LENGTH,
        )
        return response["ValidationData"]

    def verify(self, pan: str, expiry: date, cvv: str, service_code: str = CVV2_SERVICE_CODE) -> bool:
        if not is_cvv_shaped(cvv):
            return False
        try:
            yymm = check_card_data(pan, expiry, service_code)
        except CardDataError:
            return False
        try:
            self._client.verify_card_validation_data(
                KeyIdentifier=self.key_arn,
                PrimaryAccountNumber=pan,
                VerificationAttributes=card_attributes(yymm, service_code),
                ValidationData=cvv,
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "VerificationFailedException":
                return False
            raise
        return True
