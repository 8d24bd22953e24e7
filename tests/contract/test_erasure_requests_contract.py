"""Contract of the erasure-requests port (two-person erasure): the same assertions on the SQLite file and
the DynamoDB table (moto). Each status step is a conditional write, so of two confirmations racing on one
request exactly one moves it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cdp.corebanking.erasure_requests.dynamodb import DynamoDbErasureRequests
from cdp.corebanking.erasure_requests.port import CONFIRMING, DONE, PENDING, ErasureRequest, ErasureRequests
from cdp.corebanking.erasure_requests.sqlite import SqliteErasureRequests
from tests.contract.moto_env import REGION, use_fake_aws_credentials

TABLE = "cdp-erasure-requests"
AT = datetime(2026, 1, 2, 9, 30, tzinfo=UTC)


def _sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], ErasureRequests]]:
    yield lambda: SqliteErasureRequests(tmp_path / "erasure_requests.sqlite")


def _dynamodb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], ErasureRequests]]:
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )  # fmt: skip
        yield lambda: DynamoDbErasureRequests(boto3.client("dynamodb", region_name=REGION), TABLE)


ADAPTERS = {"sqlite": _sqlite, "dynamodb": _dynamodb}


@pytest.fixture(params=sorted(ADAPTERS))
def opener(request, tmp_path, monkeypatch) -> Iterator[Callable[[], ErasureRequests]]:
    """Opens the store as a new process would (the same file or table each time)."""
    yield from ADAPTERS[request.param](tmp_path, monkeypatch)


def _request(request_id: str = "er_1") -> ErasureRequest:
    return ErasureRequest(request_id, 42, "usr_" + "b" * 26, "privacy-officer-1", AT)


def test_adapter_satisfies_the_port(opener) -> None:
    assert isinstance(opener(), ErasureRequests)


def test_a_request_reads_back_exactly_from_another_process(opener) -> None:
    opener().add(_request())
    got = opener().get("er_1")
    assert got == _request()
    assert got.status == PENDING and got.confirmed_by is None and got.requested_at == AT
    assert opener().get("er_missing") is None


def test_status_moves_only_from_the_stated_status_and_records_the_confirmer(opener) -> None:
    store = opener()
    store.add(_request())
    confirmed_at = datetime(2026, 1, 3, tzinfo=UTC)
    assert not store.move("er_1", CONFIRMING, DONE, "privacy-officer-2", confirmed_at)  # not confirming yet
    assert store.move("er_1", PENDING, CONFIRMING, "privacy-officer-2", confirmed_at)
    assert not store.move("er_1", PENDING, CONFIRMING, "privacy-officer-3", confirmed_at)  # already moved
    got = opener().get("er_1")
    assert (got.status, got.confirmed_by, got.confirmed_at) == (CONFIRMING, "privacy-officer-2", confirmed_at)
    assert store.move("er_1", CONFIRMING, DONE, None, None)
    done = opener().get("er_1")
    assert done.status == DONE and done.confirmed_by == "privacy-officer-2"  # kept by a later step


def test_moving_back_to_pending_clears_the_confirmer(opener) -> None:
    store = opener()
    store.add(_request())
    assert store.move("er_1", PENDING, CONFIRMING, "privacy-officer-2", AT)
    assert store.move(
        "er_1", CONFIRMING, PENDING, None, None
    )  # the erasure failed: it may be confirmed again
    got = opener().get("er_1")
    assert (got.status, got.confirmed_by, got.confirmed_at) == (PENDING, None, None)


def test_a_missing_request_never_moves(opener) -> None:
    assert not opener().move("er_missing", PENDING, CONFIRMING, "privacy-officer-2", AT)


def test_of_racing_confirmations_exactly_one_wins(opener) -> None:
    opener().add(_request())
    wins: list[str] = []
    lock = threading.Lock()

    def confirm(who: str) -> None:
        if opener().move("er_1", PENDING, CONFIRMING, who, AT):
            with lock:
                wins.append(who)

    threads = [threading.Thread(target=confirm, args=(f"privacy-officer-{i}",)) for i in range(2, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1 and opener().get("er_1").confirmed_by == wins[0]
