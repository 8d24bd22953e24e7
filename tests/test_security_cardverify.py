"""Card verification as an issuer's HSM does it: the CVV is recomputed under a key, never stored.

The local adapter is a software HSM over a CVK kept wrapped in the data-key store; the AWS adapter calls
AWS Payment Cryptography's data plane, tested with botocore's Stubber on the real request and response
shapes (moto 5 implements only Payment Cryptography's control plane, not `payment-cryptography-data`).
The behaviour both adapters share is checked in tests/contract/test_cardverify_contract.py.
"""

from __future__ import annotations

from datetime import date

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from cdp.backends import Backends
from cdp.security.cardverify import CardVerifier
from cdp.security.cardverify import local as local_module
from cdp.security.cardverify.aws import PaymentCryptographyVerifier
from cdp.security.cardverify.local import CVK_ID, SoftwareHsm, decimalise, load_or_create_cvk
from cdp.settings import Settings

PAN = "4000123412341234"
EXPIRY = date(2027, 11, 1)
KEY_ARN = "arn:aws:payment-cryptography:eu-west-1:111122223333:key/kwapwa6qaifllw2h"


@pytest.fixture
def hsm() -> SoftwareHsm:
    return SoftwareHsm(bytes(range(32)))


def test_the_comparison_is_constant_time(hsm, monkeypatch) -> None:
    calls = []
    real = local_module.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(local_module.hmac, "compare_digest", spy)
    cvv = hsm.generate(PAN, EXPIRY)
    assert (
        hsm.verify(PAN, EXPIRY, cvv) is True
        and hsm.verify(PAN, EXPIRY, "999" if cvv != "999" else "998") is False
    )
    assert len(calls) == 2 and all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


def test_decimalisation_takes_decimal_digits_first_then_a_to_f() -> None:
    assert decimalise("a1b2c3d4") == "123"
    assert decimalise("ab7cdef") == "701"  # one decimal digit, then a=0, b=1
    assert decimalise("fedcba") == "543"


def test_the_cvk_is_a_wrapped_data_key_under_a_reserved_id() -> None:
    b = Backends()
    cvk = load_or_create_cvk(b.keys, b.data_keys)
    wrapped = b.data_keys.get(CVK_ID)
    assert wrapped is not None and cvk not in wrapped  # stored only wrapped
    assert load_or_create_cvk(b.keys, b.data_keys) == cvk  # stable: the same key every time
    again = Backends(Settings())  # another process on the same home verifies what this one generated
    assert again.card_verifier.verify(PAN, EXPIRY, b.card_verifier.generate(PAN, EXPIRY)) is True
    assert "cvk" in repr(b.card_verifier) and cvk.hex() not in repr(b.card_verifier)


def test_backends_pick_the_adapter(monkeypatch) -> None:
    assert isinstance(Backends().card_verifier, SoftwareHsm)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws = Backends(Settings(backend="aws", card_verification_key_arn=KEY_ARN))
    verifier = aws.card_verifier
    assert isinstance(verifier, PaymentCryptographyVerifier) and isinstance(verifier, CardVerifier)
    assert verifier.key_arn == KEY_ARN


# -- AWS Payment Cryptography (Stubber on the real shapes) ---------------------------------------------
@pytest.fixture
def stubbed(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("payment-cryptography-data", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield PaymentCryptographyVerifier(client, KEY_ARN), stubber
        stubber.assert_no_pending_responses()


def test_aws_generate_sends_cvv2_attributes_with_yymm_expiry(stubbed) -> None:
    verifier, stubber = stubbed
    stubber.add_response(
        "generate_card_validation_data",
        {"KeyArn": KEY_ARN, "KeyCheckValue": "7F2363", "ValidationData": "801"},
        {
            "KeyIdentifier": KEY_ARN,
            "PrimaryAccountNumber": PAN,
            "GenerationAttributes": {"CardVerificationValue2": {"CardExpiryDate": "2711"}},
            "ValidationDataLength": 3,
        },
    )
    assert verifier.generate(PAN, EXPIRY) == "801"


def test_aws_verify_true_false_and_other_errors(stubbed) -> None:
    verifier, stubber = stubbed
    request = {
        "KeyIdentifier": KEY_ARN,
        "PrimaryAccountNumber": PAN,
        "VerificationAttributes": {"CardVerificationValue2": {"CardExpiryDate": "2711"}},
        "ValidationData": "801",
    }
    stubber.add_response(
        "verify_card_validation_data", {"KeyArn": KEY_ARN, "KeyCheckValue": "7F2363"}, request
    )
    stubber.add_client_error(
        "verify_card_validation_data",
        service_error_code="VerificationFailedException",
        service_message="Card validation data verification failed.",
        http_status_code=400,
        expected_params=request | {"ValidationData": "802"},
    )
    stubber.add_client_error(
        "verify_card_validation_data",
        service_error_code="AccessDeniedException",
        http_status_code=403,
        expected_params=request,
    )
    assert verifier.verify(PAN, EXPIRY, "801") is True
    assert verifier.verify(PAN, EXPIRY, "802") is False
    with pytest.raises(ClientError, match="AccessDenied"):
        verifier.verify(PAN, EXPIRY, "801")  # a broken setup is an error, not a failed check


def test_aws_other_service_codes_use_cvv1_and_bad_input_never_calls(stubbed) -> None:
    verifier, stubber = stubbed
    stubber.add_response(
        "verify_card_validation_data",
        {"KeyArn": KEY_ARN, "KeyCheckValue": "7F2363"},
        {
            "KeyIdentifier": KEY_ARN,
            "PrimaryAccountNumber": PAN,
            "VerificationAttributes": {
                "CardVerificationValue1": {"CardExpiryDate": "2711", "ServiceCode": "201"}
            },
            "ValidationData": "123",
        },
    )
    assert verifier.verify(PAN, EXPIRY, "123", service_code="201") is True
    assert verifier.verify(PAN, EXPIRY, "12") is False and verifier.verify("123", EXPIRY, "123") is False
