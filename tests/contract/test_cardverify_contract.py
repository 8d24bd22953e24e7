"""Contract of the card-verification port, run against both adapters: the software HSM and AWS Payment
Cryptography's data plane.

moto 5 does not implement `payment-cryptography-data`, so the AWS adapter talks to a real boto3 client
whose calls are answered in process by `SimulatedPaymentCryptography` (request and response checked
against the real API model, the CVV computed for the attributes actually sent). The assertions below are
the same for both; `calls` is what reached the service (always empty for the software HSM).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import boto3
import pytest

from cdp.security.cardverify import CardVerifier
from cdp.security.cardverify.aws import PaymentCryptographyVerifier
from cdp.security.cardverify.local import SoftwareHsm
from cdp.security.cardverify.port import CardDataError
from tests.contract.moto_env import REGION, use_fake_aws_credentials
from tests.contract.simulated_payment_cryptography import SERVICE, SimulatedPaymentCryptography

PAN = "4000123412341234"
AMEX = "371234567812345"
EXPIRY = date(2027, 11, 1)
KEY_ARN = "arn:aws:payment-cryptography:eu-west-1:111122223333:key/kwapwa6qaifllw2h"
OTHER_ARN = "arn:aws:payment-cryptography:eu-west-1:111122223333:key/otherissuerkey01"


@dataclass
class Harness:
    verifier: CardVerifier
    other_issuer: Callable[[], CardVerifier]  # the same service, another issuer's CVK
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _software_hsm() -> Iterator[Harness]:
    yield Harness(SoftwareHsm(secrets.token_bytes(32)), lambda: SoftwareHsm(secrets.token_bytes(32)))


def _payment_cryptography(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    use_fake_aws_credentials(monkeypatch)
    client = boto3.client(SERVICE, region_name=REGION)
    service = SimulatedPaymentCryptography(
        client, {KEY_ARN: secrets.token_bytes(32), OTHER_ARN: secrets.token_bytes(32)}
    )
    yield Harness(
        PaymentCryptographyVerifier(client, KEY_ARN),
        lambda: PaymentCryptographyVerifier(client, OTHER_ARN),
        service.calls,
    )


@pytest.fixture(params=["software-hsm", "payment-cryptography"])
def harness(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    if request.param == "software-hsm":
        yield from _software_hsm()
    else:
        yield from _payment_cryptography(monkeypatch)


@pytest.fixture
def verifier(harness: Harness) -> CardVerifier:
    return harness.verifier


def test_adapter_satisfies_the_port(verifier: CardVerifier) -> None:
    assert isinstance(verifier, CardVerifier)


def test_generate_then_verify_round_trips(verifier: CardVerifier) -> None:
    cvv = verifier.generate(PAN, EXPIRY)
    assert len(cvv) == 3 and cvv.isdigit()
    assert verifier.generate(PAN, EXPIRY) == cvv  # deterministic: nothing to store
    assert verifier.verify(PAN, EXPIRY, cvv) is True
    assert verifier.verify(AMEX, EXPIRY, verifier.generate(AMEX, EXPIRY)) is True


def test_a_wrong_cvv_expiry_pan_or_service_code_fails(verifier: CardVerifier) -> None:
    cvv = verifier.generate(PAN, EXPIRY)
    wrong = f"{(int(cvv) + 1) % 1000:03d}"
    assert verifier.verify(PAN, EXPIRY, wrong) is False
    assert verifier.verify(PAN, date(2027, 12, 1), cvv) is False  # another expiry month
    assert verifier.verify("4000123412341242", EXPIRY, cvv) is False  # another (Luhn-valid) PAN
    assert verifier.verify(PAN, EXPIRY, cvv, service_code="101") is False  # CVV1 of the stripe is not CVV2


def test_cvvs_spread_over_all_thousand_values(verifier: CardVerifier) -> None:
    cvvs = [verifier.generate(f"4000{n:012d}", EXPIRY) for n in range(2000)]
    assert len(set(cvvs)) > 800  # no bias towards a few values (2000 draws of 1000: ~865 distinct)


def test_malformed_input_is_refused_without_echoing_it(verifier: CardVerifier) -> None:
    for args in (("40001234", EXPIRY), ("4000-1234-1234-1234", EXPIRY), (PAN, "2711")):
        with pytest.raises(CardDataError) as err:
            verifier.generate(*args)  # type: ignore[arg-type]
        assert PAN not in str(err.value) and "2711" not in str(err.value)
    with pytest.raises(CardDataError, match="service code"):
        verifier.generate(PAN, EXPIRY, service_code="00")
    cvv = verifier.generate(PAN, EXPIRY)
    for bad in (int(cvv), cvv + "0", cvv[:2], None, f" {cvv[:2]}"):
        assert verifier.verify(PAN, EXPIRY, bad) is False  # type: ignore[arg-type]
    assert verifier.verify("40001234", EXPIRY, cvv) is False


def test_another_issuers_key_gives_other_cvvs(harness: Harness) -> None:
    cvvs = [harness.verifier.generate(f"4000{n:012d}", EXPIRY) for n in range(20)]
    other = harness.other_issuer()
    assert [other.generate(f"4000{n:012d}", EXPIRY) for n in range(20)] != cvvs
    assert sum(other.verify(f"4000{n:012d}", EXPIRY, cvv) for n, cvv in enumerate(cvvs)) < 5


def test_cvv1_cvv2_and_icvv_are_distinct_codes_of_one_card(verifier: CardVerifier) -> None:
    cvv2, cvv1, icvv = (verifier.generate(PAN, EXPIRY, code) for code in ("000", "101", "999"))
    for code, cvv in (("000", cvv2), ("101", cvv1), ("999", icvv)):
        assert verifier.verify(PAN, EXPIRY, cvv, service_code=code) is True
    assert verifier.generate(PAN, EXPIRY) == cvv2  # CVV2 is the default


def test_malformed_input_never_reaches_the_key(harness: Harness) -> None:
    harness.verifier.verify("40001234", EXPIRY, "123")
    harness.verifier.verify(PAN, EXPIRY, "12")
    harness.verifier.verify(PAN, EXPIRY, "123", service_code="1")
    with pytest.raises(CardDataError):
        harness.verifier.generate(PAN, "2711")  # type: ignore[arg-type]
    assert harness.calls == []
