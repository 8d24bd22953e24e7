"""The writer produces byte-exact IBM files: published samples read back and re-written are identical."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pytest

from cdp.ibm.quarantine import Quarantine
from cdp.ibm.reader import read_cards, read_transactions, read_users
from cdp.ibm.schema import CARDS_SCHEMA, TRANSACTIONS_HEADER, TRANSACTIONS_SCHEMA, USERS_SCHEMA
from cdp.ibm.writer import TransactionsWriter, format_transactions, write_cards, write_users
from tests.ibm_samples import (
    CARDS_ROWS,
    TRANSACTIONS_ROWS,
    USERS_ROWS,
    csv_text,
    write_samples,
)


def _one_transaction(**changes: object) -> pa.Table:
    row = {
        "line": 2,
        "user": 0,
        "card": 0,
        "ts": datetime(2002, 9, 1, 6, 21),
        "amount_cents": 13409,
        "channel": "swipe",
        "merchant_id": 3527213246127876953,
        "merchant_city": "La Verne",
        "merchant_state": "CA",
        "zip": "91750",
        "mcc": 5300,
        "errors": [],
        "is_fraud": False,
    }
    row.update(changes)
    return pa.Table.from_pylist([row], schema=TRANSACTIONS_SCHEMA)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, "0,0,2002,9,1,06:21,$134.09,Swipe Transaction,3527213246127876953,La Verne,CA,91750.0,5300,,No"),
        ({"amount_cents": -47300}, "$-473.00"),
        ({"amount_cents": -5}, "$-0.05"),
        ({"amount_cents": 0}, "$0.00"),
        ({"zip": "02921"}, ",2921.0,"),
        ({"zip": None, "merchant_state": None}, ",La Verne,,,5300,"),
        ({"channel": "online"}, ",Online Transaction,"),
        ({"channel": "chip"}, ",Chip Transaction,"),
        ({"errors": ["Bad PIN"]}, ",5300,Bad PIN,No"),
        ({"errors": ["Bad PIN", "Insufficient Balance"]}, ',5300,"Bad PIN,Insufficient Balance",No'),
        ({"is_fraud": True}, ",Yes\n"),
        ({"ts": datetime(2020, 2, 28, 0, 0)}, "0,0,2020,2,28,00:00,"),
        ({"merchant_id": -(2**63)}, f",{-(2**63)},"),
        ({"merchant_city": "Washington, D.C."}, ',"Washington, D.C.",'),
    ],
)
def test_format_transactions_field_shapes(changes: dict, expected: str) -> None:
    text = format_transactions(_one_transaction(**changes)).decode()
    assert text.endswith("\n") and text.count("\n") == 1
    assert expected in text


def test_samples_read_then_written_are_byte_identical(tmp_path) -> None:
    users_path, cards_path, tx_path = write_samples(tmp_path)
    q = Quarantine(tmp_path / "q")
    users = read_users(users_path, q)
    cards = read_cards(cards_path, q)
    transactions = read_transactions(tx_path, q)
    assert q.total == 0

    out = tmp_path / "out"
    out.mkdir()
    assert write_users(users, out / "u.csv") == len(USERS_ROWS)
    assert write_cards(cards, out / "c.csv") == len(CARDS_ROWS)
    with TransactionsWriter(out / "t.csv") as writer:
        writer.write(transactions.slice(0, 3))
        writer.write(transactions.slice(3))
    assert writer.rows_written == len(TRANSACTIONS_ROWS)

    assert (out / "u.csv").read_bytes() == users_path.read_bytes()
    assert (out / "c.csv").read_bytes() == cards_path.read_bytes()
    assert (out / "t.csv").read_bytes() == tx_path.read_bytes()


def test_format_transactions_is_the_file_without_header(tmp_path) -> None:
    _, _, tx_path = write_samples(tmp_path)
    table = read_transactions(tx_path, Quarantine(tmp_path / "q"))
    assert (
        format_transactions(table).decode()
        == csv_text(TRANSACTIONS_HEADER, TRANSACTIONS_ROWS).split("\n", 1)[1]
    )
    assert format_transactions(table.slice(0, 0)) == b""


def test_transactions_writer_ignores_line_and_writes_header_for_empty_file(tmp_path) -> None:
    path = tmp_path / "t.csv"
    with TransactionsWriter(path) as writer:
        assert writer.write(_one_transaction().drop_columns(["line"])) == 1
    assert path.read_text().splitlines()[0] == ",".join(TRANSACTIONS_HEADER)
    assert len(path.read_text().splitlines()) == 2
    with pytest.raises(ValueError, match="closed"):
        writer.write(_one_transaction())


def test_writer_rejects_nulls_and_unknown_channels() -> None:
    with pytest.raises(ValueError, match="channel"):
        format_transactions(_one_transaction(channel="wire"))
    with pytest.raises(ValueError, match="null"):
        format_transactions(_one_transaction(mcc=None))


def test_users_money_zip_and_coordinates(tmp_path) -> None:
    row = {
        "line": 2,
        "user": 0,
        "person": "A B",
        "current_age": 30,
        "retirement_age": 65,
        "birth_year": 1990,
        "birth_month": 1,
        "gender": "Male",
        "address": "1 Main St",
        "apartment": None,
        "city": "Newport",
        "state": "RI",
        "zipcode": "00501",
        "latitude": 41.5,
        "longitude": -71.3,
        "per_capita_income": 1234567,
        "yearly_income": 999,
        "total_debt": 1000,
        "fico_score": 700,
        "num_credit_cards": 2,
    }
    write_users(pa.Table.from_pylist([row], schema=USERS_SCHEMA), tmp_path / "u.csv")
    line = (tmp_path / "u.csv").read_text().splitlines()[1]
    assert (
        line
        == 'A B,30,65,1990,1,Male,1 Main St,,Newport,RI,501,41.50,-71.30,"$1,234,567 ",$999 ,"$1,000 ",700,2'
    )


def test_cards_dates_cvv_and_flags(tmp_path) -> None:
    row = {
        "line": 2,
        "user": 3,
        "card_index": 1,
        "card_brand": "Amex",
        "card_type": "Credit",
        "card_number": "371234567890123",
        "expires": date(2022, 3, 1),
        "cvv": "007",
        "has_chip": False,
        "cards_issued": 1,
        "credit_limit": 120000,
        "acct_open_date": date(1999, 11, 1),
        "year_pin_last_changed": 2001,
        "card_on_dark_web": True,
    }
    write_cards(pa.Table.from_pylist([row], schema=CARDS_SCHEMA), tmp_path / "c.csv")
    line = (tmp_path / "c.csv").read_text().splitlines()[1]
    assert line == "3,1,Amex,Credit,371234567890123,03/2022,007,NO,1,$120000,11/1999,2001,Yes"


def test_large_table_is_formatted_in_slices(monkeypatch) -> None:
    from cdp.ibm import writer

    table = pa.concat_tables([_one_transaction(amount_cents=i) for i in range(7)])
    whole = format_transactions(table)
    monkeypatch.setattr(writer, "FORMAT_SLICE_ROWS", 3)
    assert format_transactions(table) == whole
    assert whole.decode().splitlines()[5].split(",")[6] == "$0.05"
