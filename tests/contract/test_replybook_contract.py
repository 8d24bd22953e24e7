"""Contract of the reply-store port (reply codes of fraud notices and the customers' answers): the same
assertions on the SQLite file and the DynamoDB table (moto). A code reads back with its transactions from
another process, alerts joining an episode later reach every code of the notice, the first answer wins
(also when answers race), and an unknown code is neither answered nor created."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cdp.aws_resources import NOTICE_REPLIES_TABLE
from cdp.feedback.dynamodb import DynamoDbReplyStore
from cdp.feedback.port import ReplyStore
from cdp.feedback.replies import ReplyBook
from cdp.feedback.sqlite import SqliteReplyStore
from tests.contract.moto_env import REGION, use_fake_aws_credentials

TABLE = f"cdp-{NOTICE_REPLIES_TABLE}"
AT = datetime(2026, 1, 2, 9, 30, tzinfo=UTC)
NOTICE = "ntc-000000000000000000000001"


def _sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], ReplyStore]]:
    yield lambda: SqliteReplyStore(tmp_path / "state" / "notice_replies.sqlite")


def _dynamodb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], ReplyStore]]:
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )  # fmt: skip
        yield lambda: DynamoDbReplyStore(boto3.client("dynamodb", region_name=REGION), TABLE)


ADAPTERS = {"sqlite": _sqlite, "dynamodb": _dynamodb}


@pytest.fixture(params=sorted(ADAPTERS))
def opener(request, tmp_path, monkeypatch) -> Iterator[Callable[[], ReplyStore]]:
    """Opens the store as a new process would (the same file or table each time)."""
    yield from ADAPTERS[request.param](tmp_path, monkeypatch)


def test_adapter_satisfies_the_port(opener) -> None:
    assert isinstance(opener(), ReplyStore)


def test_a_code_reads_back_with_its_transactions_from_another_process(opener) -> None:
    opener().issue("KXQM-TRPD", NOTICE, ["t-2", "t-1", "t-2"])
    assert opener().transactions("KXQM-TRPD") == ["t-1", "t-2"]
    assert opener().transactions("ABCD-EFGH") is None


def test_later_alerts_reach_every_code_of_the_notice_and_no_other(opener) -> None:
    store = opener()
    store.issue("KXQM-TRPD", NOTICE, ["t-1"])
    store.issue("WXYZ-ABCD", NOTICE, ["t-1"])  # the notice composed again after a crash: a second code
    store.issue("HJKL-MNPQ", "ntc-000000000000000000000002", ["u-1"])
    opener().extend(NOTICE, ["t-3", "t-2"])
    opener().extend(NOTICE, ["t-3"])
    opener().extend("ntc-000000000000000000000009", ["v-1"])  # a notice without codes: nothing happens
    assert opener().transactions("KXQM-TRPD") == ["t-1", "t-2", "t-3"]
    assert opener().transactions("WXYZ-ABCD") == ["t-1", "t-2", "t-3"]
    assert opener().transactions("HJKL-MNPQ") == ["u-1"]


def test_the_first_answer_wins_and_an_unknown_code_is_not_created(opener) -> None:
    opener().issue("KXQM-TRPD", NOTICE, ["t-1"])
    assert opener().answer_once("KXQM-TRPD", "not-me", AT)
    assert not opener().answer_once("KXQM-TRPD", "me", AT)
    assert not opener().answer_once("ABCD-EFGH", "me", AT)
    assert opener().transactions("ABCD-EFGH") is None


def test_of_racing_answers_exactly_one_is_recorded(opener, request) -> None:
    if request.node.callspec.params["opener"] == "dynamodb":
        pytest.skip("moto does not serialise concurrent conditional writes (DynamoDB does)")
    opener().issue("KXQM-TRPD", NOTICE, ["t-1"])
    wins: list[bool] = []

    def answer(i: int) -> None:
        wins.append(opener().answer_once("KXQM-TRPD", "me" if i % 2 else "not-me", AT))

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]


def test_the_book_over_the_store_answers_once_and_counts_the_transactions(opener) -> None:
    book = ReplyBook(opener())
    book.issue("KXQM-TRPD", NOTICE, ["t-1", "t-2"])
    book.extend(NOTICE, ["t-3"])
    first = ReplyBook(opener()).answer("KXQM-TRPD", "not-me", AT)
    assert (first.status, first.transactions) == ("recorded", 3)
    assert ReplyBook(opener()).answer("KXQM-TRPD", "me", AT).status == "already-answered"
    assert ReplyBook(opener()).answer("ABCD-EFGH", "me", AT).status == "unknown-code"
    assert ReplyBook(opener()).answer("not a code", "me", AT).status == "unknown-code"


def test_the_backends_keep_replies_in_dynamodb_in_aws_and_in_the_state_folder_locally(monkeypatch):
    from cdp.backends import Backends
    from cdp.settings import Settings

    assert isinstance(Backends(Settings()).reply_store, SqliteReplyStore)
    use_fake_aws_credentials(monkeypatch)
    monkeypatch.setenv("CDP_BACKEND", "aws")
    with mock_aws():
        b = Backends(Settings())
        store = b.reply_store
        assert isinstance(store, DynamoDbReplyStore)
        assert store.table_name == f"{b.settings.dynamodb_table_prefix}notice-replies"
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=store.table_name, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )  # fmt: skip
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=b.settings.lake_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )  # the answer's labels land in the lake
        ReplyBook.of(b).issue("KXQM-TRPD", NOTICE, ["t-1"])
        assert ReplyBook.of(Backends(Settings())).answer("KXQM-TRPD", "me", AT).status == "recorded"
