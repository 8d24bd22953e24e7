"""Key-management adapters: the local keyring's file, rotation and retirement, and KMS specifics (the port's
contract, on both adapters, is tests/contract/test_keys_contract.py)."""

from __future__ import annotations

import os
import stat

import boto3
import pytest
from moto import mock_aws

from cdp.security.errors import KeyAccessError, KeyringPermissionError
from cdp.security.keys.kms import KmsKeyManager, create_key
from cdp.security.keys.local import LocalKeyring
from cdp.settings import Settings

CTX = {"customer": "usr_aaaaaaaaaaaaaaaaaaaaaaaaaa", "use": "pii-fields"}


@pytest.fixture
def aws_env(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": Settings().aws_region,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield Settings().aws_region


# -- local keyring specifics -------------------------------------------------------------------------
def test_keyring_file_is_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0o000)
    try:
        ring = LocalKeyring(tmp_path / "keyring.json")
        ring.rotate()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "keyring.json").stat().st_mode) == 0o600
    assert ring.versions == ("v1", "v2")


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o640])
def test_readable_keyring_is_refused(tmp_path, mode):
    path = tmp_path / "keyring.json"
    LocalKeyring(path)
    path.chmod(mode)
    with pytest.raises(KeyringPermissionError, match="0600"):
        LocalKeyring(path)


def test_keyring_persists_and_another_process_sees_rotation(tmp_path):
    path = tmp_path / "keyring.json"
    writer, reader = LocalKeyring(path), LocalKeyring(path)
    writer.rotate()
    dk = writer.generate_data_key(CTX)  # wrapped under v2, which `reader` has not loaded yet
    assert reader.decrypt_data_key(dk.wrapped, CTX) == dk.plaintext
    assert LocalKeyring(path).current_version == "v2"
    assert dk.plaintext not in path.read_bytes()


def test_unknown_key_version_is_a_key_access_error(tmp_path):
    dk = LocalKeyring(tmp_path / "a.json").generate_data_key(CTX)
    other = LocalKeyring(tmp_path / "b.json")  # different master key, same version name
    with pytest.raises(KeyAccessError):
        other.decrypt_data_key(dk.wrapped, CTX)
    with pytest.raises(KeyAccessError):
        other.decrypt_data_key(b"LK1\x02v9" + dk.wrapped[6:], CTX)


# -- KMS specifics -----------------------------------------------------------------------------------
def test_kms_passes_the_encryption_context_to_kms(aws_env):
    client = boto3.client("kms", region_name=aws_env)
    key_id = create_key(client)
    dk = KmsKeyManager(client, key_id).generate_data_key(CTX)
    # KMS itself (not our code) enforces the context: a raw Decrypt without it fails
    with pytest.raises(client.exceptions.InvalidCiphertextException):
        client.decrypt(CiphertextBlob=dk.wrapped)
    assert client.decrypt(CiphertextBlob=dk.wrapped, EncryptionContext=CTX)["Plaintext"] == dk.plaintext


def test_kms_refuses_a_blob_of_another_key(aws_env):
    client = boto3.client("kms", region_name=aws_env)
    ours, theirs = KmsKeyManager(client, create_key(client)), KmsKeyManager(client, create_key(client))
    dk = theirs.generate_data_key(CTX)
    with pytest.raises(KeyAccessError):
        ours.decrypt_data_key(dk.wrapped, CTX)


def test_from_settings_builds_both_adapters(tmp_path, aws_env):
    settings = Settings(home=tmp_path, kms_key_id="alias/cdp-pii")
    ring = LocalKeyring.from_settings(settings)
    assert ring.path == tmp_path / "state" / "keyring.json" and ring.path.exists()
    create_key(boto3.client("kms", region_name=settings.aws_region), alias=settings.kms_key_id)
    manager = KmsKeyManager.from_settings(settings)
    dk = manager.generate_data_key(CTX)
    assert manager.decrypt_data_key(dk.wrapped, CTX) == dk.plaintext


# -- re-wrapping and retiring (master-key rotation) --------------------------------------------------


def test_local_retire_drops_unused_versions_only(tmp_path):
    ring = LocalKeyring(tmp_path / "keyring.json")
    v1_key = ring.generate_data_key(CTX)
    ring.rotate()
    v2_key = ring.generate_data_key(CTX)
    ring.rotate()
    assert ring.retire({"v2"}) == ("v1",)
    assert LocalKeyring(ring.path).versions == ("v2", "v3")  # persisted
    assert ring.decrypt_data_key(v2_key.wrapped, CTX) == v2_key.plaintext
    with pytest.raises(KeyAccessError, match="v1"):
        ring.decrypt_data_key(v1_key.wrapped, CTX)
    assert ring.retire(set()) == ("v2",) and ring.versions == ("v3",)
    assert ring.rotate() == "v4"  # a retired version name is never reused


def test_local_keyring_wraps_under_a_version_rotated_by_another_process(tmp_path):
    path = tmp_path / "keyring.json"
    writer, rotator = LocalKeyring(path), LocalKeyring(path)
    rotator.rotate()
    rotator.retire(set())  # v1 gone: a stale writer must not wrap under it
    dk = writer.generate_data_key(CTX)
    assert dk.key_version == "v2" and rotator.decrypt_data_key(dk.wrapped, CTX) == dk.plaintext


def test_kms_has_nothing_to_retire(aws_env):
    from cdp.security.errors import KeyRetirementUnsupported

    client = boto3.client("kms", region_name=aws_env)
    with pytest.raises(KeyRetirementUnsupported, match="KMS keeps"):
        KmsKeyManager(client, create_key(client)).retire(set())
