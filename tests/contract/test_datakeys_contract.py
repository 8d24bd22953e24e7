"""Contract of the data-key store port, run against both adapters: SQLite and DynamoDB (moto).

`reopen` builds a second store over the same storage (the SQLite file, the DynamoDB table), as another
process would: erasures and first writers must hold across processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from cdp.security.datakeys.dynamodb import DynamoDataKeyStore, create_table
from cdp.security.datakeys.port import DataKeyStore
from cdp.security.datakeys.sqlite import SqliteDataKeyStore
from cdp.security.errors import CustomerErased
from tests.contract.moto_env import REGION, use_fake_aws_credentials

A, B, C = "usr_" + "a" * 26, "usr_" + "b" * 26, "usr_" + "c" * 26
CTX_A = {"customer": A, "use": "pii-fields"}
TABLE = "cdp-data-keys"


@dataclass
class Harness:
    store: DataKeyStore
    reopen: Callable[[], DataKeyStore]


@pytest.fixture(params=["sqlite", "dynamodb"])
def harness(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[Harness]:
    if request.param == "sqlite":
        path = tmp_path / "state" / "data_keys.sqlite"
        yield Harness(SqliteDataKeyStore(path), lambda: SqliteDataKeyStore(path))
        return
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, TABLE)
        create_table(client, TABLE)  # idempotent
        yield Harness(DynamoDataKeyStore(client, TABLE), lambda: DynamoDataKeyStore(client, TABLE))


@pytest.fixture
def store(harness: Harness) -> DataKeyStore:
    return harness.store


def test_is_a_data_key_store(store: DataKeyStore) -> None:
    assert isinstance(store, DataKeyStore)


def test_put_get_delete(store: DataKeyStore) -> None:
    assert store.get(A) is None
    store.put(A, b"\x00wrapped-a", "v1")
    store.put(B, b"wrapped-b", "v1")
    assert store.get(A) == b"\x00wrapped-a"
    store.put(A, b"rewrapped-a", "v2")  # replace (e.g. re-wrapped after rotation)
    assert store.get(A) == b"rewrapped-a"
    assert sorted(store.tokens()) == [A, B]
    assert store.delete(A) is True
    assert store.get(A) is None and store.is_erased(A)
    assert store.delete(A) is False  # already gone
    assert store.get(B) == b"wrapped-b" and not store.is_erased(B)
    assert list(store.tokens()) == [B]


def test_put_if_absent_keeps_the_first_key(store: DataKeyStore) -> None:
    assert store.put_if_absent(A, b"first", "v1") is True
    assert store.put_if_absent(A, b"second", "v1") is False
    assert store.get(A) == b"first"


def test_an_erased_customer_never_gets_a_key_again(store: DataKeyStore) -> None:
    store.put(A, b"k", "v1")
    store.delete(A)
    assert store.put_if_absent(A, b"new", "v1") is False
    with pytest.raises(CustomerErased, match=A):
        store.put(A, b"new", "v1")
    assert store.get(A) is None
    # erasing a customer who never had a key also blocks future keys
    assert store.delete(C) is False
    assert store.is_erased(C) and store.put_if_absent(C, b"k", "v1") is False


def test_context_is_stored_with_the_entry(store: DataKeyStore) -> None:
    store.put_if_absent(A, b"wa", "v1", context=CTX_A)
    store.put(B, b"wb", "v1")  # written without a context (older callers)
    by_id = {e.entry_id: e for e in store.entries()}
    assert by_id[A].context == CTX_A and by_id[A].wrapped == b"wa" and by_id[A].key_version == "v1"
    assert by_id[B].context is None
    assert store.entry(A) == by_id[A] and store.entry(C) is None
    store.put(A, b"wa2", "v2")  # a replacement without a context keeps the stored one
    assert store.entry(A).context == CTX_A


def test_swap_replaces_only_the_expected_key(store: DataKeyStore) -> None:
    store.put(A, b"old", "v1")
    assert store.swap(A, b"other", b"new", "v2", CTX_A) is False
    assert store.get(A) == b"old"
    assert store.swap(A, b"old", b"new", "v2", CTX_A) is True
    assert store.entry(A).wrapped == b"new" and store.entry(A).key_version == "v2"
    assert store.entry(A).context == CTX_A
    store.delete(A)
    assert store.swap(A, b"new", b"newer", "v3", CTX_A) is False  # an erasure is never undone
    assert store.get(A) is None and store.is_erased(A)
    assert list(store.entries()) == []


def test_entries_and_tokens_list_every_live_id_once(store: DataKeyStore) -> None:
    ids = [f"usr_{n:026d}" for n in range(40)]
    for n, entry_id in enumerate(ids):
        store.put(entry_id, bytes([n]) * 8, "v1", context={"customer": entry_id, "use": "pii-fields"})
    store.delete(ids[0])
    assert sorted(store.tokens()) == ids[1:]
    entries = {e.entry_id: e for e in store.entries()}
    assert sorted(entries) == ids[1:]
    assert entries[ids[7]].wrapped == bytes([7]) * 8 and entries[ids[7]].context["customer"] == ids[7]


def test_another_store_on_the_same_storage_sees_keys_and_erasures(harness: Harness) -> None:
    harness.store.put_if_absent(A, b"first", "v1", context=CTX_A)
    harness.store.put(B, b"kb", "v1")
    harness.store.delete(B)
    other = harness.reopen()
    assert other.get(A) == b"first" and other.entry(A).context == CTX_A
    assert other.put_if_absent(A, b"second", "v1") is False  # the first writer wins across processes
    assert other.is_erased(B) and other.get(B) is None
    with pytest.raises(CustomerErased):
        other.put(B, b"again", "v1")
