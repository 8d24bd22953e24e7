"""DynamoDB adapter specifics (inside moto): the documented key design, item encoding, big batches."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from cdp.oltp import Counts
from cdp.oltp.dynamodb import DynamoDbOltpStore
from cdp.oltp.ids import transaction_id
from cdp.settings import Settings

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.resource("dynamodb", region_name=REGION)


@pytest.fixture
def store(aws) -> DynamoDbOltpStore:
    s = DynamoDbOltpStore(aws, "bank-")
    s.create_tables()
    return s


def txn(line: int, card: int = 2) -> dict:
    return dict(
        line=line,
        user=17,
        card=card,
        ts=datetime(2020, 1, 1) + timedelta(hours=line),
        amount_cents=-1999,
        channel="online",
        merchant_id=-(2**63),
        merchant_city="ONLINE",
        merchant_state=None,
        zip=None,
        mcc=3640,
        errors=[],
        is_fraud=False,
    )


def test_tables_and_keys_are_as_documented(aws, store) -> None:
    client = aws.meta.client
    tables = ["bank-cards", "bank-customers", "bank-erasures", "bank-transactions"]
    assert sorted(client.list_tables()["TableNames"]) == tables
    erasures = client.describe_table(TableName="bank-erasures")["Table"]["KeySchema"]
    assert erasures == [{"AttributeName": "pk", "KeyType": "HASH"}]
    schema = client.describe_table(TableName="bank-transactions")["Table"]["KeySchema"]
    assert schema == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    store.create_tables()  # idempotent

    store.upsert_customers([{"user": 17, "line": 19, "latitude": 34.15, "apartment": None, "email": "a@b.c"}])
    store.upsert_cards(
        [
            {
                "user": 17,
                "card_index": 2,
                "pan_last4": "0007",
                "card_number_enc": "1abc",
                "expires": date(2022, 12, 1),
            }
        ]
    )
    store.put_transactions([txn(2)])

    customer = aws.Table("bank-customers").get_item(Key={"pk": "USER#17"})["Item"]
    assert customer["latitude"] == Decimal("34.15") and "apartment" not in customer  # None is not stored
    card = aws.Table("bank-cards").get_item(Key={"pk": "USER#17", "sk": "CARD#02"})["Item"]
    assert (
        card["expires"] == "2022-12-01" and card["pan_last4"] == "0007" and card["card_number_enc"] == "1abc"
    )
    assert not {"cvv", "card_number"} & set(card)
    [item] = aws.Table("bank-transactions").scan()["Items"]
    tid = transaction_id(17, 2, txn(2)["ts"], 2)
    assert (item["pk"], item["sk"]) == ("CARD#17#2", f"TS#2020-01-01T02:00:00#{tid}")
    assert item["errors"] == [] and item["merchant_id"] == -(2**63)


def test_put_transactions_across_chunks_counts_only_new_ones(store) -> None:
    rows = [txn(line, card=line % 3) for line in range(2, 252)]  # 250 rows: three BatchGet chunks
    assert store.put_transactions(rows[:120]) == 120
    assert store.put_transactions(rows + rows[:10]) == 130  # 120 known + 130 new, 10 sent twice
    assert store.counts() == Counts(customers=0, cards=0, transactions=250)
    history = store.transactions_for_card(17, 1)
    assert len(history) == len([r for r in rows if r["card"] == 1])
    assert [r["ts"] for r in history] == sorted(r["ts"] for r in history)


def test_from_settings_uses_region_and_prefix(aws, tmp_path) -> None:
    settings = Settings(home=tmp_path, aws_region=REGION, dynamodb_table_prefix="prod-cdp-")
    store = DynamoDbOltpStore.from_settings(settings)
    assert store.table_names == {
        "customers": "prod-cdp-customers",
        "cards": "prod-cdp-cards",
        "transactions": "prod-cdp-transactions",
        "erasures": "prod-cdp-erasures",
    }
    store.create_tables()
    store.upsert_customers([{"user": 1}])
    assert store.get_customer(1)["user"] == 1
