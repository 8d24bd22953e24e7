"""A stand-in for AWS Payment Cryptography's data plane, hooked into a real boto3 client.

moto 5 implements only the control plane of Payment Cryptography, not `payment-cryptography-data`. This
answers `GenerateCardValidationData` / `VerifyCardValidationData` in process, the way botocore's Stubber
does (its `before-parameter-build` and `before-call` events), but computes the answer instead of replaying
a canned one: each key ARN holds a CVK, and the CVV is computed by the software HSM's algorithm for the
card verification attributes the request carries (CVV2: service code 000; CVV1: the code sent). Requests
are checked by botocore against the real API model before they get here; responses are checked against
it here. A CVV that does not match is a `VerificationFailedException`, an unknown key a
`ResourceNotFoundException`, as the service answers.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.validate import validate_parameters

from cdp.security.cardverify.local import SoftwareHsm

SERVICE = "payment-cryptography-data"
KEY_CHECK_VALUE = "7F2363"


class SimulatedPaymentCryptography:
    """Answers the card-validation calls of `client` under the CVKs given per key ARN."""

    def __init__(self, client: Any, cvks: dict[str, bytes]) -> None:
        self._hsms = {arn: SoftwareHsm(cvk) for arn, cvk in cvks.items()}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register(f"before-parameter-build.{SERVICE}", self._capture)
        client.meta.events.register(f"before-call.{SERVICE}", self._answer)

    def _capture(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["simulated-request"] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = context["simulated-request"]
        self.calls.append((model.name, request))
        hsm = self._hsms.get(request["KeyIdentifier"])
        if hsm is None:
            return _error(404, "ResourceNotFoundException", "Key not found")
        if model.name == "GenerateCardValidationData":
            cvv = _cvv(hsm, request["PrimaryAccountNumber"], request["GenerationAttributes"])
            body = {
                "KeyArn": request["KeyIdentifier"],
                "KeyCheckValue": KEY_CHECK_VALUE,
                "ValidationData": cvv,
            }
        elif model.name == "VerifyCardValidationData":
            cvv = _cvv(hsm, request["PrimaryAccountNumber"], request["VerificationAttributes"])
            if cvv != request["ValidationData"]:
                return _error(400, "VerificationFailedException", "Card validation data verification failed.")
            body = {"KeyArn": request["KeyIdentifier"], "KeyCheckValue": KEY_CHECK_VALUE}
        else:
            raise NotImplementedError(model.name)
        validate_parameters(body, model.output_shape)
        return AWSResponse(None, 200, {}, None), {**body, "ResponseMetadata": {"HTTPStatusCode": 200}}


def _cvv(hsm: SoftwareHsm, pan: str, attributes: dict[str, Any]) -> str:
    """The CVV for one of the two attribute shapes the adapter uses (other shapes are not simulated)."""
    (kind,) = attributes
    if kind == "CardVerificationValue2":
        service_code = "000"
    elif kind == "CardVerificationValue1":
        service_code = attributes[kind]["ServiceCode"]
    else:
        raise NotImplementedError(kind)
    yymm = attributes[kind]["CardExpiryDate"]
    return hsm.generate(pan, date(2000 + int(yymm[:2]), int(yymm[2:]), 1), service_code)


def _error(status: int, code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return AWSResponse(None, status, {}, None), parsed
