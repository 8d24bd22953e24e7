"""Contract of the OLTP store port, run against both adapters (SQLite; DynamoDB inside moto)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import boto3
import pyarrow as pa
import pytest
from moto import mock_aws

from cdp.ibm.schema import CARDS_SCHEMA, TRANSACTIONS_SCHEMA, USERS_SCHEMA
from cdp.oltp import Counts, OltpStore, RecordError, rows_from_table, transaction_id
from cdp.oltp.dynamodb import DynamoDbOltpStore
from cdp.oltp.sqlite import SqliteOltpStore

CVVS = {(0, 0): "047", (0, 1): "913", (1, 0): "582"}
PANS = {(0, 0): "4000123412341234", (0, 1): "371234567812345", (1, 0): "5100111122223333"}
STORE_CARDS_SCHEMA = pa.schema(
    [f for f in CARDS_SCHEMA if f.name not in ("cvv", "card_number")]
    + [pa.field("card_number_enc", pa.string()), pa.field("pan_last4", pa.string())]
)


def customer_rows() -> list[dict[str, Any]]:
    users = pa.Table.from_pylist(
        [
            dict(
                line=2,
                user=0,
                person="Ada Quill",
                current_age=53,
                retirement_age=66,
                birth_year=1966,
                birth_month=11,
                gender="Female",
                address="12 Oak Lane",
                apartment=None,
                city="Springfield",
                state="MA",
                zipcode="02921",
                latitude=42.1,
                longitude=-71.53,
                per_capita_income=29278,
                yearly_income=59696,
                total_debt=127613,
                fico_score=787,
                num_credit_cards=2,
            ),
            dict(
                line=3,
                user=1,
                person="Bo Reyes",
                current_age=31,
                retirement_age=67,
                birth_year=1988,
                birth_month=2,
                gender="Male",
                address="9 Elm Street",
                apartment="4B",
                city="La Verne",
                state="CA",
                zipcode="91750",
                latitude=34.1,
                longitude=-117.77,
                per_capita_income=31000,
                yearly_income=0,
                total_debt=0,
                fico_score=650,
                num_credit_cards=1,
            ),
        ],
        schema=USERS_SCHEMA,
    )
    emails = ["ada.quill@example.com", "bo.reyes@example.net"]
    return [dict(r, email=e) for r, e in zip(rows_from_table(users), emails, strict=True)]


def source_card_rows() -> list[dict[str, Any]]:
    """Rows of the cards file (with PAN and CVV): what the loader reads, not what the store takes."""
    base = dict(
        card_brand="Visa",
        card_type="Debit",
        has_chip=True,
        cards_issued=2,
        credit_limit=24295,
        year_pin_last_changed=2008,
        card_on_dark_web=False,
    )
    cards = pa.Table.from_pylist(
        [
            dict(
                base,
                line=2,
                user=0,
                card_index=0,
                card_number=PANS[(0, 0)],
                expires=date(2022, 12, 1),
                cvv=CVVS[(0, 0)],
                acct_open_date=date(2002, 9, 1),
            ),
            dict(
                base,
                line=3,
                user=0,
                card_index=1,
                card_brand="Amex",
                card_type="Credit",
                card_number=PANS[(0, 1)],
                expires=date(2024, 3, 1),
                cvv=CVVS[(0, 1)],
                has_chip=False,
                acct_open_date=date(2010, 1, 1),
                year_pin_last_changed=None,
            ),
            dict(
                base,
                line=4,
                user=1,
                card_index=0,
                card_number=PANS[(1, 0)],
                expires=date(2021, 6, 1),
                cvv=CVVS[(1, 0)],
                acct_open_date=date(2015, 5, 1),
            ),
        ],
        schema=CARDS_SCHEMA,
    )
    return list(rows_from_table(cards))


def card_rows() -> list[dict[str, Any]]:
    """Cards as the loader hands them to the store: no CVV, PAN as ciphertext (a stand-in) + last four."""
    out = []
    for r in source_card_rows():
        row = {k: v for k, v in r.items() if k not in ("cvv", "card_number")}
        row["card_number_enc"] = f"1ciphertext-of-card-{r['user']}-{r['card_index']}"
        row["pan_last4"] = r["card_number"][-4:]
        out.append(row)
    return out


def transaction_rows(user: int = 0, card: int = 0, n: int = 6, first_line: int = 2) -> list[dict[str, Any]]:
    start = datetime(2015, 11, 16, 11, 20)
    rows = []
    for i in range(n):
        rows.append(
            dict(
                line=first_line + i,
                user=user,
                card=card,
                ts=start + timedelta(days=i, minutes=7 * i),
                amount_cents=(-47300 if i == n - 1 else 1250 + i),
                channel=["swipe", "chip", "online"][i % 3],
                merchant_id=-1234567890123456789 + i,
                merchant_city="ONLINE" if i % 3 == 2 else "Rome",
                merchant_state=None if i % 3 == 2 else "Italy",
                zip=None if i % 2 else "02921",
                mcc=5812,
                errors=["Bad PIN", "Insufficient Balance"] if i == 1 else [],
                is_fraud=i == n - 1,
            )
        )
    table = pa.Table.from_pylist(rows, schema=TRANSACTIONS_SCHEMA)
    return list(rows_from_table(table))


@pytest.fixture(params=["sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> OltpStore:
    if request.param == "sqlite":
        s = SqliteOltpStore(tmp_path / "oltp.sqlite3", page_size=2)  # tiny pages: pagination is exercised
        yield s
        s.close()
        return
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s = DynamoDbOltpStore(boto3.resource("dynamodb", region_name="eu-west-1"), "test-", page_size=2)
        s.create_tables()
        yield s


@pytest.fixture
def loaded(store: OltpStore) -> OltpStore:
    store.upsert_customers(customer_rows())
    store.upsert_cards(card_rows())
    return store


def test_adapters_satisfy_the_port(store: OltpStore) -> None:
    assert isinstance(store, OltpStore)
    assert store.counts() == Counts(customers=0, cards=0, transactions=0)


def test_upsert_twice_keeps_counts_and_updates_fields(store: OltpStore) -> None:
    assert store.upsert_customers(customer_rows()) == 2
    assert store.upsert_cards(card_rows()) == 3
    assert store.upsert_customers(customer_rows()) == 2
    assert store.upsert_cards(card_rows()) == 3
    assert store.counts() == Counts(customers=2, cards=3, transactions=0)

    changed = customer_rows()[0] | {"fico_score": 702, "email": "ada.q@example.org", "apartment": "1A"}
    assert store.upsert_customers([changed]) == 1
    card = card_rows()[2] | {"credit_limit": 30000, "has_chip": False}
    store.upsert_cards([card])
    assert store.get_customer(0) == changed
    assert store.get_card(1, 0) == card
    assert store.get_customer(1) == customer_rows()[1]
    assert store.counts() == Counts(customers=2, cards=3, transactions=0)


def test_records_round_trip_every_type(loaded: OltpStore) -> None:
    customers = customer_rows()
    assert loaded.get_customer(0) == customers[0]  # None apartment, floats, int8/int16/int64, strings
    assert loaded.get_customer(1) == customers[1]
    assert loaded.get_customer(7) is None
    got = loaded.get_card(0, 1)
    assert got == card_rows()[1]
    assert (
        isinstance(got["expires"], date) and got["has_chip"] is False and got["year_pin_last_changed"] is None
    )
    assert loaded.get_card(0, 5) is None
    assert sorted(r["user"] for r in loaded.iter_customers()) == [0, 1]
    # what comes out fits the clean Arrow schemas again, unchanged
    back = pa.Table.from_pylist(
        sorted(loaded.iter_cards(), key=lambda r: (r["user"], r["card_index"])),
        schema=STORE_CARDS_SCHEMA,
    )
    original = pa.Table.from_pylist(card_rows(), schema=STORE_CARDS_SCHEMA)
    assert back.equals(original)


def test_a_cvv_or_a_clear_pan_is_refused_and_never_read_back(loaded: OltpStore) -> None:
    for source_row in source_card_rows():  # the cards file's row as is: the store cannot take it
        with pytest.raises(RecordError, match=r"unknown field\(s\) \['card_number', 'cvv'\]") as err:
            loaded.upsert_cards([source_row])
        assert source_row["cvv"] not in str(err.value) and source_row["card_number"] not in str(err.value)
    loaded.put_transactions(transaction_rows())
    reads: list[dict[str, Any]] = [
        loaded.get_card(0, 0),
        loaded.get_card(0, 1),
        loaded.get_card(1, 0),
        *loaded.list_cards(0),
        *loaded.list_cards(1),
        *loaded.iter_cards(),
        *loaded.iter_customers(),
        loaded.get_customer(0),
        *loaded.transactions_for_card(0, 0),
    ]
    assert len(reads) == 3 + 3 + 3 + 2 + 1 + 6
    for row in reads:
        assert "cvv" not in row and "card_number" not in row
        assert not (set(CVVS.values()) | set(PANS.values())) & {v for v in row.values() if isinstance(v, str)}
    assert [c["card_index"] for c in loaded.list_cards(0)] == [0, 1]


def test_the_port_has_no_cvv_lookup(store: OltpStore) -> None:
    assert not hasattr(OltpStore, "verify_cvv") and not hasattr(store, "verify_cvv")


def test_a_current_store_has_nothing_to_migrate(loaded: OltpStore) -> None:
    assert list(loaded.legacy_cards()) == []
    assert loaded.migrate_cards([]) == 0
    assert loaded.get_card(0, 0) == card_rows()[0]


def test_transactions_are_stored_once_by_id(store: OltpStore) -> None:
    rows = transaction_rows()
    assert store.put_transactions(rows[:4]) == 4
    assert store.put_transactions(rows[:4]) == 0
    assert store.put_transactions(rows[2:] + rows[-1:]) == 2  # two known, two new (one sent twice)
    assert store.counts().transactions == 6
    got = store.transactions_for_card(0, 0)
    assert [r["transaction_id"] for r in got] == [
        transaction_id(r["user"], r["card"], r["ts"], r["line"]) for r in rows
    ]
    # the id a row already carries is accepted when it is the right one
    assert store.put_transactions([rows[0] | {"transaction_id": got[0]["transaction_id"]}]) == 0


def test_transactions_round_trip(store: OltpStore) -> None:
    rows = transaction_rows()
    store.put_transactions(rows)
    got = store.transactions_for_card(0, 0)
    assert [{k: v for k, v in r.items() if k != "transaction_id"} for r in got] == rows
    assert got[1]["errors"] == ["Bad PIN", "Insufficient Balance"] and got[0]["errors"] == []
    assert got[-1]["amount_cents"] == -47300 and got[-1]["is_fraud"] is True
    assert got[2]["merchant_state"] is None and isinstance(got[0]["ts"], datetime)


def test_transactions_for_card_in_time_order_with_since_and_limit(store: OltpStore) -> None:
    mine = transaction_rows(0, 0, n=8)
    other_card = transaction_rows(0, 1, n=3, first_line=100)
    other_user = transaction_rows(1, 0, n=3, first_line=200)
    same_minute = mine[3] | {"line": 50, "amount_cents": 999}  # a look-alike in the same minute
    shuffled = [*mine, *other_card, *other_user, same_minute]
    random.Random(3).shuffle(shuffled)
    assert store.put_transactions(shuffled) == 15

    got = store.transactions_for_card(0, 0)
    assert len(got) == 9 and {(r["user"], r["card"]) for r in got} == {(0, 0)}
    keys = [(r["ts"], r["transaction_id"]) for r in got]
    assert keys == sorted(keys)
    assert {r["line"] for r in got if r["ts"] == mine[3]["ts"]} == {mine[3]["line"], 50}

    since = mine[5]["ts"]
    assert [r["line"] for r in store.transactions_for_card(0, 0, since=since)] == [
        r["line"] for r in mine[5:]
    ]
    assert [r["line"] for r in store.transactions_for_card(0, 0, limit=2)] == [r["line"] for r in mine[:2]]
    assert [r["line"] for r in store.transactions_for_card(0, 0, since=since, limit=1)] == [mine[5]["line"]]
    assert store.transactions_for_card(0, 0, since=mine[-1]["ts"] + timedelta(seconds=1)) == []
    assert store.transactions_for_card(0, 7) == [] and store.transactions_for_card(0, 0, limit=0) == []
    assert len(store.transactions_for_card(0, 1)) == 3


def test_delete_customer_erases_customer_and_cards(loaded: OltpStore) -> None:
    loaded.put_transactions(transaction_rows())
    assert loaded.delete_customer(0) == 3
    assert loaded.get_customer(0) is None
    assert loaded.list_cards(0) == [] and loaded.get_card(0, 0) is None
    assert {r["user"] for r in loaded.iter_customers()} == {1}
    assert {(r["user"], r["card_index"]) for r in loaded.iter_cards()} == {(1, 0)}
    assert loaded.counts() == Counts(customers=1, cards=1, transactions=6)
    assert loaded.delete_customer(0) == 0
    assert loaded.get_customer(1) == customer_rows()[1]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"zipcode": 2921}, "zipcode"),  # PII of the wrong type: named, not echoed
        ({"person": None, "user": None}, "user"),
        ({"fico_score": 7.5}, "fico_score"),
        ({"nickname": "Ada"}, "nickname"),
    ],
)
def test_bad_customer_rows_are_refused_without_echoing_values(store: OltpStore, bad, field) -> None:
    row = customer_rows()[0] | bad
    with pytest.raises(RecordError) as err:
        store.upsert_customers([row])
    message = str(err.value)
    assert "customers line 2" in message and field in message
    assert "2921" not in message and "Ada" not in message and "Quill" not in message


def test_bad_transaction_rows_are_refused(store: OltpStore) -> None:
    row = transaction_rows()[0]
    with pytest.raises(RecordError, match="transactions line 2: field 'ts' is required"):
        store.put_transactions([row | {"ts": None}])
    with pytest.raises(RecordError, match="field 'transaction_id' does not match"):
        store.put_transactions([row | {"transaction_id": "0" * 20}])
    with pytest.raises(RecordError, match="field 'errors'"):
        store.put_transactions([row | {"errors": "Bad PIN"}])
    assert store.counts().transactions == 0
