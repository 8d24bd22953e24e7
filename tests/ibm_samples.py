"""Hand-written rows in exactly the published IBM format (made-up people, cards and merchants),
and hypothesis strategies drawing clean tables of the three files."""

from __future__ import annotations

import string
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from cdp.ibm.schema import (
    CARD_BRANDS,
    CARD_TYPES,
    CARDS_HEADER,
    CARDS_SCHEMA,
    ERROR_CODES,
    GENDERS,
    TRANSACTIONS_HEADER,
    TRANSACTIONS_SCHEMA,
    USERS_HEADER,
    USERS_SCHEMA,
)

USERS_ROWS = (
    'Jane Doe,53,66,1966,11,Female,123 Oak Lane,,La Verne,CA,91750,34.15,-117.76,"$29,278 ","$59,696 ",'
    '"$127,613 ",787,5',
    "John Roe,40,67,1979,1,Male,9 Elm Street,Apt 7,Providence,RI,2921,41.80,-71.40,$196 ,$0 ,$0 ,612,1",
    'Ann Poe,81,65,1938,3,Female,77 Bay Road,,Boston,MA,2108,42.36,-71.06,"$45,002 ","$1,234 ",$0 ,701,3',
)

CARDS_ROWS = (
    "0,0,Visa,Debit,4000123412341234,12/2022,623,YES,2,$24295,09/2002,2008,No",
    "0,1,Amex,Credit,371234567890123,03/2024,023,YES,1,$9100,04/2010,2012,No",
    "1,0,Mastercard,Debit (Prepaid),5412345678901234,07/2021,918,NO,1,$55,01/2015,2015,No",
    "2,0,Discover,Credit,6011123412341234,11/2020,007,YES,1,$12400,02/1998,2019,No",
)

TRANSACTIONS_ROWS = (
    "0,0,2002,9,1,06:21,$134.09,Swipe Transaction,3527213246127876953,La Verne,CA,91750.0,5300,,No",
    "0,0,2002,9,1,06:42,$38.48,Swipe Transaction,-727612092139916043,Monterey Park,CA,91754.0,5411,,No",
    "0,1,2015,11,16,11:20,$473.00,Online Transaction,-1234567890123456789,ONLINE,,,3640,,Yes",
    "0,1,2015,11,20,07:42,$-473.00,Online Transaction,-1234567890123456789,ONLINE,,,3640,,Yes",
    "0,1,2010,3,4,13:02,$12.50,Chip Transaction,8765432109876543210,Rome,Italy,,5812,"
    '"Bad PIN,Insufficient Balance",No',
    "1,0,2019,12,31,23:59,$0.05,Chip Transaction,42,Providence,RI,2921.0,5499,Bad PIN,No",
    "2,0,2020,2,28,00:00,$1234.00,Swipe Transaction,7,Boston,MA,2108.0,4829,"
    '"Bad CVV,Bad Expiration,Technical Glitch",No',
    "2,0,2020,2,28,00:01,$-0.01,Swipe Transaction,7,Boston,MA,2108.0,4829,Technical Glitch,No",
)

# Accepted spellings the writer does not produce, and the canonical row each one reads as.
TRANSACTIONS_VARIANTS = (
    (
        "2,0,2020,2,28,00:01,$-0.01,Swipe Transaction,7,Boston,MA,02108,4829,Technical Glitch,No",
        "2,0,2020,2,28,00:01,$-0.01,Swipe Transaction,7,Boston,MA,2108.0,4829,Technical Glitch,No",
    ),
    (
        "0,0,2002,9,1,06:21,$134.09,Swipe Transaction,3527213246127876953,La Verne,CA,91750,5300,,No",
        "0,0,2002,9,1,06:21,$134.09,Swipe Transaction,3527213246127876953,La Verne,CA,91750.0,5300,,No",
    ),
)

KNOWN_CARDS = {(0, 0), (0, 1), (1, 0), (2, 0)}

# Every personal value in USERS_ROWS / CARDS_ROWS that must never appear in a quarantine record.
PII_VALUES = (
    "Jane Doe",
    "123 Oak Lane",
    "John Roe",
    "9 Elm Street",
    "Apt 7",
    "4000123412341234",
    "371234567890123",
    "12/2022",
    "623",
)


def csv_text(header: tuple[str, ...], rows: tuple[str, ...] | list[str]) -> str:
    """A whole file: header line, then the rows, LF line endings."""
    return "".join(line + "\n" for line in (",".join(header), *rows))


def write_samples(directory: Path) -> tuple[Path, Path, Path]:
    """Write the three sample files under their published names; return (users, cards, transactions)."""
    users = directory / "sd254_users.csv"
    cards = directory / "sd254_cards.csv"
    transactions = directory / "credit_card_transactions-ibm_v2.csv"
    users.write_text(csv_text(USERS_HEADER, USERS_ROWS))
    cards.write_text(csv_text(CARDS_HEADER, CARDS_ROWS))
    transactions.write_text(csv_text(TRANSACTIONS_HEADER, TRANSACTIONS_ROWS))
    return users, cards, transactions


# ---- hypothesis strategies: clean tables the writer takes and the reader must give back -----------

_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " .-',", min_size=1, max_size=20)
_OPTIONAL_STATE = st.one_of(st.none(), st.sampled_from(["CA", "RI", "NY", "Italy", "Mexico"]), _TEXT)
_ZIP = st.text(alphabet=string.digits, min_size=5, max_size=5)
_MONTH_START = st.dates(date(1950, 1, 1), date(2030, 12, 1)).map(lambda d: d.replace(day=1))


@st.composite
def transaction_rows(draw: st.DrawFn) -> dict[str, Any]:
    channel = draw(st.sampled_from(["swipe", "chip", "online"]))
    online = channel == "online"
    ts = draw(st.datetimes(datetime(1991, 1, 1), datetime(2020, 2, 28, 23, 59))).replace(
        second=0, microsecond=0
    )
    return {
        "user": draw(st.integers(0, 50)),
        "card": draw(st.integers(0, 8)),
        "ts": ts,
        "amount_cents": draw(st.integers(-(10**7), 10**8)),
        "channel": channel,
        "merchant_id": draw(st.integers(-(2**63), 2**63 - 1)),
        "merchant_city": "ONLINE" if online else draw(_TEXT),
        "merchant_state": None if online else draw(_OPTIONAL_STATE),
        "zip": None if online else draw(st.one_of(st.none(), _ZIP)),
        "mcc": draw(st.integers(0, 9999)),
        "errors": draw(st.lists(st.sampled_from(ERROR_CODES), max_size=3, unique=True)),
        "is_fraud": draw(st.booleans()),
    }


def transactions_tables(min_size: int = 0, max_size: int = 30) -> st.SearchStrategy[pa.Table]:
    return st.lists(transaction_rows(), min_size=min_size, max_size=max_size).map(
        lambda rows: pa.Table.from_pylist(
            [{"line": i + 2, **r} for i, r in enumerate(rows)], schema=TRANSACTIONS_SCHEMA
        )
    )


@st.composite
def user_rows(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "person": draw(_TEXT),
        "current_age": draw(st.integers(18, 110)),
        "retirement_age": draw(st.integers(50, 80)),
        "birth_year": draw(st.integers(1910, 2002)),
        "birth_month": draw(st.integers(1, 12)),
        "gender": draw(st.sampled_from(GENDERS)),
        "address": draw(_TEXT),
        "apartment": draw(st.one_of(st.none(), _TEXT)),
        "city": draw(_TEXT),
        "state": draw(st.sampled_from(["CA", "RI", "NY", "TX"])),
        "zipcode": draw(_ZIP),
        "latitude": draw(st.integers(-9000, 9000)) / 100,
        "longitude": draw(st.integers(-18000, 18000)) / 100,
        "per_capita_income": draw(st.integers(0, 10**7)),
        "yearly_income": draw(st.integers(0, 10**7)),
        "total_debt": draw(st.integers(0, 10**7)),
        "fico_score": draw(st.integers(300, 850)),
        "num_credit_cards": draw(st.integers(0, 9)),
    }


def users_tables(max_size: int = 15) -> st.SearchStrategy[pa.Table]:
    return st.lists(user_rows(), max_size=max_size).map(
        lambda rows: pa.Table.from_pylist(
            [{"line": i + 2, "user": i, **r} for i, r in enumerate(rows)], schema=USERS_SCHEMA
        )
    )


@st.composite
def cards_tables(draw: st.DrawFn, max_size: int = 15) -> pa.Table:
    keys = draw(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 8)), max_size=max_size, unique=True))
    rows = []
    for i, (user, card_index) in enumerate(keys):
        digits = draw(st.sampled_from([15, 16]))
        rows.append(
            {
                "line": i + 2,
                "user": user,
                "card_index": card_index,
                "card_brand": draw(st.sampled_from(CARD_BRANDS)),
                "card_type": draw(st.sampled_from(CARD_TYPES)),
                "card_number": draw(st.text(string.digits, min_size=digits, max_size=digits)),
                "expires": draw(_MONTH_START),
                "cvv": draw(st.text(string.digits, min_size=3, max_size=3)),
                "has_chip": draw(st.booleans()),
                "cards_issued": draw(st.integers(1, 5)),
                "credit_limit": draw(st.integers(0, 10**6)),
                "acct_open_date": draw(_MONTH_START),
                "year_pin_last_changed": draw(st.integers(1990, 2020)),
                "card_on_dark_web": draw(st.booleans()),
            }
        )
    return pa.Table.from_pylist(rows, schema=CARDS_SCHEMA)
