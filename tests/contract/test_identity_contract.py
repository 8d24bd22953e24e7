"""Contract of the identity port, run against both adapters: signed local identity tokens and the IAM
principal from STS (moto).

A harness stands for the administrator: `login(person, roles)` gives the identity provider as seen by
a process that `person` runs with `roles` granted by configuration (local: an identity issued to it and
its token file; AWS: a session of an IAM role that the role map grants `roles`, assumed as `person`).
`runs_as_service(name)` sets the platform service up the way each adapter expects; `nobody()` is a
process with no usable identity.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from cdp.security.errors import NotAuthenticated
from cdp.security.identity.aws import IamIdentityProvider
from cdp.security.identity.local import LocalIdentityProvider, write_token_file
from cdp.security.identity.port import PROMOTION_GATE_SERVICE, SERVICE_ROLES, Identity, IdentityProvider
from cdp.security.identity.register import SqliteIdentityRegister
from tests.contract.moto_env import REGION, use_fake_aws_credentials


@dataclass
class Harness:
    login: Callable[[str, tuple[str, ...]], IdentityProvider]
    runs_as_service: Callable[[str], IdentityProvider]
    nobody: Callable[[], IdentityProvider]


def _local(tmp_path: Path) -> Iterator[Harness]:
    register = SqliteIdentityRegister(tmp_path / "identities.sqlite")
    key = secrets.token_bytes(32)
    services = tmp_path / "services"

    def provider(token_file: Path | None) -> LocalIdentityProvider:
        return LocalIdentityProvider(register, lambda: key, token_file, services)

    admin = provider(None)
    admin.issue("admin", ["admin"], expires_days=1, issued_by=None)

    def login(person: str, roles: tuple[str, ...]) -> IdentityProvider:
        issued = admin.issue(person, roles, expires_days=1, issued_by="admin")
        write_token_file(tmp_path / f"{person}.token", issued.token)
        return provider(tmp_path / f"{person}.token")

    def runs_as_service(name: str) -> IdentityProvider:
        issued = admin.issue(name, SERVICE_ROLES[name], expires_days=1, issued_by="admin")
        write_token_file(admin.service_token_path(name), issued.token)
        return provider(None)

    yield Harness(login, runs_as_service, lambda: provider(None))


def _iam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        iam = boto3.client("iam", region_name=REGION)
        role_map: dict[str, list[str]] = {}

        def session(role_name: str, roles: tuple[str, ...], person: str) -> IdentityProvider:
            arn = f"arn:aws:iam::123456789012:role/{role_name}"
            if arn not in role_map:
                arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps({}))["Role"][
                    "Arn"
                ]
                role_map[arn] = list(roles)
            c = boto3.client("sts", region_name=REGION).assume_role(RoleArn=arn, RoleSessionName=person)
            creds = c["Credentials"]
            sts = boto3.client(
                "sts", region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
            )  # fmt: skip
            return IamIdentityProvider(sts, role_map)

        def login(person: str, roles: tuple[str, ...]) -> IdentityProvider:
            return session("cdp-" + "-".join(sorted(roles)), roles, person)

        def runs_as_service(name: str) -> IdentityProvider:
            return session(f"cdp-service-{name}", SERVICE_ROLES[name], name)

        def nobody() -> IdentityProvider:
            # AWS refuses unknown credentials; moto accepts any, so STS answers as the real service would
            sts = boto3.client("sts", region_name=REGION)
            stubber = Stubber(sts)
            stubber.add_client_error("get_caller_identity", "InvalidClientTokenId", http_status_code=403)
            stubber.activate()
            return IamIdentityProvider(sts, role_map)

        yield Harness(login, runs_as_service, nobody)


@pytest.fixture(params=["local", "iam"])
def harness(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> Iterator[Harness]:
    if request.param == "local":
        yield from _local(tmp_path)
    else:
        yield from _iam(monkeypatch)


def test_adapter_satisfies_the_port(harness: Harness) -> None:
    assert isinstance(harness.login("alice", ("analyst",)), IdentityProvider)


def test_the_caller_has_the_roles_configuration_gave_it(harness: Harness) -> None:
    who = harness.login("alice", ("model-approver", "analyst")).current()
    assert isinstance(who, Identity)
    assert who.roles == ("analyst", "model-approver")  # sorted, without duplicates
    assert who.id and who.name.endswith("alice")


def test_the_identity_is_stable_across_calls(harness: Harness) -> None:
    provider = harness.login("alice", ("analyst",))
    assert provider.current() == provider.current()


def test_two_people_with_the_same_roles_are_two_identities(harness: Harness) -> None:
    alice = harness.login("alice", ("privacy-officer",)).current()
    bob = harness.login("bob", ("privacy-officer",)).current()
    assert alice.roles == bob.roles == ("privacy-officer",)
    assert alice.id != bob.id  # separation of duties needs them apart


def test_a_platform_service_has_its_configured_roles(harness: Harness) -> None:
    provider = harness.runs_as_service(PROMOTION_GATE_SERVICE)
    service = provider.service(PROMOTION_GATE_SERVICE)
    assert service.roles == SERVICE_ROLES[PROMOTION_GATE_SERVICE]
    assert service.id


def test_no_usable_identity_is_not_authenticated(harness: Harness) -> None:
    with pytest.raises(NotAuthenticated):
        harness.nobody().current()
