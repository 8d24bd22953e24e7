"""Contract of the online-store port, run against both adapters: memory + SQLite snapshot, and DynamoDB
(moto). `reopen` builds a second store over the same backing storage, as another process would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from cdp.online.dynamodb import DynamoDbOnlineStore
from cdp.online.local import LocalOnlineStore
from cdp.online.port import OnlineStore
from tests.contract.moto_env import REGION, use_fake_aws_credentials

TABLE = "cdp-online-features"


@dataclass
class Harness:
    store: OnlineStore
    reopen: Callable[[], OnlineStore]


@pytest.fixture(params=["local", "dynamodb"])
def harness(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[Harness]:
    if request.param == "local":
        path = tmp_path / "online.sqlite"
        yield Harness(LocalOnlineStore(path), lambda: LocalOnlineStore(path))
        return
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        store = DynamoDbOnlineStore(client, TABLE)
        store.create_table()
        yield Harness(store, lambda: DynamoDbOnlineStore(client, TABLE))


@pytest.fixture
def store(harness: Harness) -> OnlineStore:
    return harness.store


def test_adapter_satisfies_the_port(store: OnlineStore) -> None:
    assert isinstance(store, OnlineStore)
    assert store.keys() == [] and store.get_many([]) == {}


def test_put_get_delete_keys_over_more_than_one_batch(store: OnlineStore) -> None:
    items = {f"fraud_card#crd_{i:04d}": bytes([i % 256]) * (i + 1) for i in range(260)}  # > one batch
    store.put_many(items)
    got = store.get_many([*items, "fraud_card#missing"])
    assert got == items
    store.put_many({"fraud_card#crd_0000": b"new"})
    assert store.get_many(["fraud_card#crd_0000"]) == {"fraud_card#crd_0000": b"new"}
    store.delete_many(["fraud_card#crd_0001", "fraud_card#never"])
    assert "fraud_card#crd_0001" not in store.get_many(["fraud_card#crd_0001"])
    store.put_many({"other#x": b"1"})
    assert store.keys("fraud_card#") == sorted(set(items) - {"fraud_card#crd_0001"})
    assert len(store.keys()) == 260


def test_states_are_opaque_bytes(store: OnlineStore) -> None:
    blobs = {"a": bytes(range(256)), "b": b"\x00", "c": b"\xff" * 4096}
    store.put_many(blobs)
    assert store.get_many(["c", "a", "b"]) == blobs


def test_a_key_asked_twice_is_answered_once(store: OnlineStore) -> None:
    store.put_many({"k": b"v"})
    assert store.get_many(["k", "k", "k"]) == {"k": b"v"}


def test_keys_are_sorted_and_filtered_by_string_prefix(store: OnlineStore) -> None:
    store.put_many({"b#2": b"", "a#1": b"x", "b#10": b"y", "ab": b"z"})
    assert store.keys() == ["a#1", "ab", "b#10", "b#2"]
    assert store.keys("a") == ["a#1", "ab"]
    assert store.keys("b#1") == ["b#10"]
    assert store.keys("zz") == []


def test_after_a_snapshot_another_store_sees_the_writes_and_deletes(harness: Harness) -> None:
    harness.store.put_many({"a": b"1", "b": b"2", "c": b"3"})
    harness.store.delete_many(["a"])
    written = harness.store.snapshot()
    assert isinstance(written, int) and written >= 0  # 0 where every write is durable at once
    other = harness.reopen()
    assert other.get_many(["a", "b", "c"]) == {"b": b"2", "c": b"3"}
    assert other.keys() == ["b", "c"]
