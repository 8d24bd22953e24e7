"""Contract of the key-management port, run against both adapters: the local keyring and KMS (moto).

`reopen` builds a second key manager over the same master key (the keyring file, the KMS alias), as
another process would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from cdp.security.errors import KeyAccessError
from cdp.security.keys.kms import KmsKeyManager, create_key
from cdp.security.keys.local import LocalKeyring
from cdp.security.keys.port import KeyManager
from tests.contract.moto_env import REGION, use_fake_aws_credentials

CTX = {"customer": "usr_aaaaaaaaaaaaaaaaaaaaaaaaaa", "use": "pii-fields"}
ALIAS = "alias/cdp-test"


@dataclass
class Harness:
    keys: KeyManager
    reopen: Callable[[], KeyManager]


@pytest.fixture(params=["local", "kms"])
def harness(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[Harness]:
    if request.param == "local":
        path = tmp_path / "state" / "keyring.json"
        yield Harness(LocalKeyring(path), lambda: LocalKeyring(path))
        return
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("kms", region_name=REGION)
        create_key(client, alias=ALIAS)
        yield Harness(KmsKeyManager(client, ALIAS), lambda: KmsKeyManager(client, ALIAS))


@pytest.fixture
def keys(harness: Harness) -> KeyManager:
    return harness.keys


def test_is_a_key_manager(keys: KeyManager) -> None:
    assert isinstance(keys, KeyManager)


def test_round_trip(keys: KeyManager) -> None:
    dk = keys.generate_data_key(CTX)
    assert len(dk.plaintext) == 32
    assert dk.plaintext not in dk.wrapped
    assert dk.key_version == keys.current_version
    assert keys.decrypt_data_key(dk.wrapped, dict(CTX)) == dk.plaintext
    assert keys.generate_data_key(CTX).plaintext != dk.plaintext  # fresh key every time
    assert "plaintext" not in repr(dk) and dk.plaintext.hex() not in repr(dk)


def test_the_context_is_a_map_not_an_ordered_list(keys: KeyManager) -> None:
    dk = keys.generate_data_key(CTX)
    reordered = dict(reversed(list(CTX.items())))
    assert keys.decrypt_data_key(dk.wrapped, reordered) == dk.plaintext


@pytest.mark.parametrize(
    "other",
    [
        {"customer": "usr_bbbbbbbbbbbbbbbbbbbbbbbbbb", "use": "pii-fields"},
        {"customer": CTX["customer"]},
        {**CTX, "extra": "x"},
        {},
    ],
)
def test_wrong_context_fails(keys: KeyManager, other: dict[str, str]) -> None:
    dk = keys.generate_data_key(CTX)
    with pytest.raises(KeyAccessError):
        keys.decrypt_data_key(dk.wrapped, other)


def test_altered_blob_fails(keys: KeyManager) -> None:
    dk = keys.generate_data_key(CTX)
    altered = dk.wrapped[:-1] + bytes([dk.wrapped[-1] ^ 1])
    with pytest.raises(KeyAccessError):
        keys.decrypt_data_key(altered, CTX)


def test_rotation_keeps_old_keys_decryptable(keys: KeyManager) -> None:
    before = keys.generate_data_key(CTX)
    new_version = keys.rotate()
    assert new_version != before.key_version and keys.current_version == new_version
    after = keys.generate_data_key(CTX)
    assert after.key_version == new_version
    assert keys.decrypt_data_key(before.wrapped, CTX) == before.plaintext
    assert keys.decrypt_data_key(after.wrapped, CTX) == after.plaintext
    assert keys.rotate() not in (before.key_version, new_version)


def test_rewrap_keeps_the_plaintext_under_the_current_version(keys: KeyManager) -> None:
    before = keys.generate_data_key(CTX)
    new_version = keys.rotate()
    assert keys.current_version == new_version
    wrapped, version = keys.rewrap(before.wrapped, dict(CTX))
    assert version == new_version and wrapped != before.wrapped
    assert keys.decrypt_data_key(wrapped, CTX) == before.plaintext
    with pytest.raises(KeyAccessError):  # the context is checked, and stays bound
        keys.rewrap(before.wrapped, {**CTX, "use": "other"})
    with pytest.raises(KeyAccessError):
        keys.decrypt_data_key(wrapped, {**CTX, "use": "other"})


def test_another_key_manager_on_the_same_master_key_unwraps_and_sees_rotations(harness: Harness) -> None:
    first = harness.keys.generate_data_key(CTX)
    rotated = harness.keys.rotate()
    other = harness.reopen()
    assert other.decrypt_data_key(first.wrapped, CTX) == first.plaintext
    assert other.current_version == rotated
    second = other.generate_data_key(CTX)
    assert harness.keys.decrypt_data_key(second.wrapped, CTX) == second.plaintext
