"""Tokens from per-customer token secrets: erasure makes a customer's tokens impossible to make again,
even for a holder of the platform token key (the attack: recompute HMAC(token key, "user:<id>"))."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pyarrow as pa
import pytest

from cdp.security.datakeys.sqlite import SqliteDataKeyStore
from cdp.security.errors import CustomerErased, KeyAccessError
from cdp.security.keys.local import LocalKeyring
from cdp.security.protector import Protector
from cdp.security.tokens import (
    LEGACY_TOKEN_KEY_ID,
    MAX_SOURCE_LINE,
    TOKEN_KEY_ID,
    TokenSchemeChanged,
    load_or_create_token_key,
)


class CountingKeys:
    """A key manager that counts its calls (to see how often secrets are made and unwrapped)."""

    def __init__(self, keys: LocalKeyring) -> None:
        self.keys = keys
        self.generated = 0
        self.unwrapped = 0

    def generate_data_key(self, context):
        self.generated += 1
        return self.keys.generate_data_key(context)

    def decrypt_data_key(self, wrapped, context):
        self.unwrapped += 1
        return self.keys.decrypt_data_key(wrapped, context)

    def rotate(self):
        return self.keys.rotate()


@pytest.fixture
def platform(tmp_path):
    keys = LocalKeyring(tmp_path / "keyring.json")
    store = SqliteDataKeyStore(tmp_path / "data_keys.sqlite")
    token_key = load_or_create_token_key(keys, store)
    return Protector(token_key, keys, store), token_key, keys, store


def _global_key_token(token_key: bytes, prefix: str, message: str) -> str:
    """The former derivation (scheme 1): HMAC of the id under the platform token key."""
    digest = hmac.digest(token_key, message.encode(), hashlib.sha256)[:16]
    return prefix + base64.b32encode(digest).decode().rstrip("=").lower()


def test_tokens_are_not_a_function_of_the_id_under_the_token_key(platform, tmp_path):
    protector, token_key, keys, store = platform
    users = {u: protector.user_token(u) for u in range(50)}
    assert len(set(users.values())) == 50 and all(len(t) == 30 for t in users.values())
    assert users[7] != _global_key_token(token_key, "usr_", "user:7")
    assert protector.card_token(7, 1) != _global_key_token(token_key, "crd_", "card:7:1")
    # Stable in a new process (the secrets are stored), different on another platform (other secrets).
    again = Protector(load_or_create_token_key(keys, store), keys, store)
    assert again.user_token(7) == users[7] and again.card_token(7, 1) == protector.card_token(7, 1)
    other_keys = LocalKeyring(tmp_path / "other" / "keyring.json")
    other_store = SqliteDataKeyStore(tmp_path / "other" / "data_keys.sqlite")
    other = Protector(load_or_create_token_key(other_keys, other_store), other_keys, other_store)
    assert other.user_token(7) != users[7]
    # The store holds the customer's secret under a keyed entry id, not under the id or the token.
    entry = protector.tokens.secret_entry(7)
    assert entry.startswith("tks_") and store.get(entry) is not None and entry[4:] != users[7][4:]
    assert entry != other.tokens.secret_entry(7)  # finding it needs the token key


def test_after_shredding_no_one_can_make_the_customers_tokens_again(platform):
    protector, token_key, keys, store = platform
    victim, bystander = 3, 4
    before = protector.user_token(victim), protector.card_token(victim, 0)
    bystander_tokens = protector.user_token(bystander), protector.card_token(bystander, 1)
    assert protector.shred_tokens(victim) is True
    for make in (lambda p: p.user_token(victim), lambda p: p.card_token(victim, 0)):
        with pytest.raises(CustomerErased):
            make(protector)
        fresh = Protector(load_or_create_token_key(keys, store), keys, store)  # a new process
        with pytest.raises(CustomerErased):
            make(fresh)
    with pytest.raises(CustomerErased):
        protector.protect_transaction({"user": victim, "card": 0, "amount_cents": 1})
    # The holder of the token key tries the derivations that need only the key and the id: none matches.
    guesses = {
        _global_key_token(token_key, "usr_", f"user:{victim}"),
        _global_key_token(token_key, "usr_", f"token-secret:user:{victim}"),
        _global_key_token(token_key, "crd_", f"card:{victim}:0"),
    }
    assert not guesses & set(before)
    entry = protector.tokens.secret_entry(victim)
    assert store.get(entry) is None and store.is_erased(entry)
    assert protector.shred_tokens(victim) is False  # already shredded
    fresh = Protector(load_or_create_token_key(keys, store), keys, store)
    assert (fresh.user_token(bystander), fresh.card_token(bystander, 1)) == bystander_tokens
    flags = fresh.tokens.erased_rows(pa.array([bystander, victim, None, victim], pa.int32()))
    assert flags is not None and flags.tolist() == [False, True, False, True]
    assert fresh.tokens.erased_rows(pa.array([bystander, None], pa.int32())) is None


def test_secrets_are_made_and_unwrapped_once_per_customer_per_process(tmp_path):
    keys = CountingKeys(LocalKeyring(tmp_path / "keyring.json"))
    store = SqliteDataKeyStore(tmp_path / "data_keys.sqlite")
    protector = Protector(load_or_create_token_key(keys, store), keys, store)
    keys.generated = keys.unwrapped = 0
    for u in range(10):
        for c in range(5):
            protector.card_token(u, c), protector.tokens.card_order_offset(u, c), protector.user_token(u)
    assert (keys.generated, keys.unwrapped) == (10, 0)
    fresh = Protector(load_or_create_token_key(keys, store), keys, store)
    keys.unwrapped = 0
    users = pa.array([u for u in range(10) for _ in range(100)], pa.int32())
    cards = pa.array([c % 5 for c in range(1000)], pa.int8())
    fresh.tokens.user_tokens(users), fresh.tokens.card_tokens(users, cards)
    assert (keys.generated, keys.unwrapped) == (10, 10)


def test_card_order_offsets_are_keyed_and_keep_event_seq_below_2_31(platform):
    protector, *_ = platform
    offsets = [protector.tokens.card_order_offset(u, c) for u in range(100) for c in range(3)]
    assert all(0 <= o < 2**30 for o in offsets) and len(set(offsets)) == len(offsets)
    assert max(offsets) + MAX_SOURCE_LINE < 2**31
    assert max(offsets) > 2**29  # spread over the range, far beyond any file's line count


def test_a_platform_with_the_former_token_key_refuses_to_run(tmp_path):
    keys = LocalKeyring(tmp_path / "keyring.json")
    store = SqliteDataKeyStore(tmp_path / "data_keys.sqlite")
    old = keys.generate_data_key({"use": "token-hmac", "id": LEGACY_TOKEN_KEY_ID})
    store.put(LEGACY_TOKEN_KEY_ID, old.wrapped, old.key_version)
    with pytest.raises(TokenSchemeChanged) as refused:
        load_or_create_token_key(keys, store)
    message = str(refused.value)
    assert "\n" not in message and "rebuild" in message and "scheme 1" in message
    assert store.get(TOKEN_KEY_ID) is None  # nothing was created next to the old key


def test_on_kms_and_dynamodb_a_shredded_customer_stays_erased(monkeypatch):
    """The AWS adapters (moto): secrets wrapped by KMS with their entry bound in the encryption context,
    kept in DynamoDB; after the shred a new process gets `CustomerErased`, other customers their tokens."""
    import boto3
    from moto import mock_aws

    from cdp.security.datakeys.dynamodb import DynamoDataKeyStore, create_table
    from cdp.security.keys.kms import KmsKeyManager, create_key

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        kms, dynamodb = boto3.client("kms", "eu-west-1"), boto3.client("dynamodb", "eu-west-1")
        create_key(kms, alias="alias/cdp-test")
        create_table(dynamodb, "cdp-data-keys")
        keys, store = KmsKeyManager(kms, "alias/cdp-test"), DynamoDataKeyStore(dynamodb, "cdp-data-keys")
        protector = Protector(load_or_create_token_key(keys, store), keys, store)
        tokens = {u: protector.user_token(u) for u in range(3)}
        entry = protector.tokens.secret_entry(1)
        with pytest.raises(KeyAccessError):  # a wrapped secret opens only for its own entry
            keys.decrypt_data_key(
                store.get(entry), {"use": "token-secret", "id": protector.tokens.secret_entry(2)}
            )
        assert protector.shred_tokens(1) is True
        fresh = Protector(load_or_create_token_key(keys, store), keys, store)
        with pytest.raises(CustomerErased):
            fresh.user_token(1)
        assert (fresh.user_token(0), fresh.user_token(2)) == (tokens[0], tokens[2])
        assert store.is_erased(entry) and store.get(entry) is None
