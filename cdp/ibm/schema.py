"""The IBM synthetic credit-card files: their public headers and our typed ("clean") schema.

This module is the contract between everything that reads or writes the three files: the generator
produces tables in the clean schema, the writer turns them into byte-compatible CSV, the reader turns
real or generated CSV back into the clean schema. Nothing else should spell a header by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

USERS_FILE = "sd254_users.csv"
CARDS_FILE = "sd254_cards.csv"
TRANSACTIONS_FILE = "credit_card_transactions-ibm_v2.csv"
# Other names the transactions file is published under (Kaggle copies, per-user extracts).
TRANSACTIONS_ALIASES = ("credit_card_transactions-ibm_v2.csv", "card_transaction.v1.csv")
TRANSACTIONS_PER_USER_GLOB = "User*_credit_card_transactions.csv"


@dataclass(frozen=True)
class Column:
    """One column of a public file and the clean column(s) it becomes."""

    header: str
    clean: str
    pii: bool = False  # a direct identifier or PCI field: never echo its value in errors or logs


USERS_COLUMNS: tuple[Column, ...] = (
    Column("Person", "person", pii=True),
    Column("Current Age", "current_age"),
    Column("Retirement Age", "retirement_age"),
    Column("Birth Year", "birth_year", pii=True),
    Column("Birth Month", "birth_month", pii=True),
    Column("Gender", "gender"),
    Column("Address", "address", pii=True),
    Column("Apartment", "apartment", pii=True),
    Column("City", "city"),
    Column("State", "state"),
    Column("Zipcode", "zipcode", pii=True),
    Column("Latitude", "latitude", pii=True),
    Column("Longitude", "longitude", pii=True),
    Column("Per Capita Income - Zipcode", "per_capita_income"),
    Column("Yearly Income - Person", "yearly_income"),
    Column("Total Debt", "total_debt"),
    Column("FICO Score", "fico_score"),
    Column("Num Credit Cards", "num_credit_cards"),
)

CARDS_COLUMNS: tuple[Column, ...] = (
    Column("User", "user"),
    Column("CARD INDEX", "card_index"),
    Column("Card Brand", "card_brand"),
    Column("Card Type", "card_type"),
    Column("Card Number", "card_number", pii=True),
    Column("Expires", "expires", pii=True),
    Column("CVV", "cvv", pii=True),
    Column("Has Chip", "has_chip"),
    Column("Cards Issued", "cards_issued"),
    Column("Credit Limit", "credit_limit"),
    Column("Acct Open Date", "acct_open_date"),
    Column("Year PIN last Changed", "year_pin_last_changed"),
    Column("Card on Dark Web", "card_on_dark_web"),
)

TRANSACTIONS_COLUMNS: tuple[Column, ...] = (
    Column("User", "user"),
    Column("Card", "card"),
    Column("Year", "year"),
    Column("Month", "month"),
    Column("Day", "day"),
    Column("Time", "time"),
    Column("Amount", "amount_cents"),
    Column("Use Chip", "channel"),
    Column("Merchant Name", "merchant_id"),
    Column("Merchant City", "merchant_city"),
    Column("Merchant State", "merchant_state"),
    Column("Zip", "zip"),
    Column("MCC", "mcc"),
    Column("Errors?", "errors"),
    Column("Is Fraud?", "is_fraud"),
)

USERS_HEADER = tuple(c.header for c in USERS_COLUMNS)
CARDS_HEADER = tuple(c.header for c in CARDS_COLUMNS)
TRANSACTIONS_HEADER = tuple(c.header for c in TRANSACTIONS_COLUMNS)

# `Use Chip` values in the public files and the clean channel names we use everywhere else.
CHANNELS = {"Swipe Transaction": "swipe", "Chip Transaction": "chip", "Online Transaction": "online"}
CHANNEL_LABELS = {v: k for k, v in CHANNELS.items()}

# Every value `Errors?` is made of (comma-joined inside quotes when there are several).
ERROR_CODES = (
    "Bad CVV",
    "Bad Card Number",
    "Bad Expiration",
    "Bad PIN",
    "Bad Zipcode",
    "Insufficient Balance",
    "Technical Glitch",
)

CARD_BRANDS = ("Mastercard", "Visa", "Amex", "Discover")
CARD_TYPES = ("Debit", "Credit", "Debit (Prepaid)")
GENDERS = ("Female", "Male")

# ---- clean (typed) schemas: what the reader yields and what the writer/generator take ----------------
# `line` is the 1-based line number in the source file (header = line 1); it identifies a row of a given
# file and keys the generator's ground truth. Money in the users/cards files is whole dollars; the
# transaction amount is signed integer cents (exact).

USERS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("user", pa.int32()),  # row order = user id (0-based)
        ("person", pa.string()),
        ("current_age", pa.int16()),
        ("retirement_age", pa.int16()),
        ("birth_year", pa.int16()),
        ("birth_month", pa.int8()),
        ("gender", pa.string()),
        ("address", pa.string()),
        ("apartment", pa.string()),  # null when empty
        ("city", pa.string()),
        ("state", pa.string()),
        ("zipcode", pa.string()),  # 5 characters, leading zeros restored
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        ("per_capita_income", pa.int64()),  # dollars
        ("yearly_income", pa.int64()),  # dollars
        ("total_debt", pa.int64()),  # dollars
        ("fico_score", pa.int16()),
        ("num_credit_cards", pa.int8()),
    ]
)

CARDS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("user", pa.int32()),
        ("card_index", pa.int8()),
        ("card_brand", pa.string()),
        ("card_type", pa.string()),
        ("card_number", pa.string()),  # digits only, 15 (Amex) or 16
        ("expires", pa.date32()),  # first day of the expiry month
        ("cvv", pa.string()),  # 3 digits, leading zeros kept
        ("has_chip", pa.bool_()),
        ("cards_issued", pa.int8()),
        ("credit_limit", pa.int64()),  # dollars
        ("acct_open_date", pa.date32()),  # first day of the month
        ("year_pin_last_changed", pa.int16()),
        ("card_on_dark_web", pa.bool_()),
    ]
)

TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("user", pa.int32()),
        ("card", pa.int8()),
        ("ts", pa.timestamp("s")),  # from Year/Month/Day/Time; local time, minute precision
        ("amount_cents", pa.int64()),  # signed: refunds/reversals are negative
        ("channel", pa.string()),  # swipe | chip | online
        ("merchant_id", pa.int64()),  # the signed 64-bit `Merchant Name` hash
        ("merchant_city", pa.string()),  # "ONLINE" for online rows
        ("merchant_state", pa.string()),  # US state code or a country name; null when empty
        ("zip", pa.string()),  # 5 characters, leading zeros restored; null when empty
        ("mcc", pa.int16()),
        ("errors", pa.list_(pa.string())),  # empty list when none
        ("is_fraud", pa.bool_()),
    ]
)

US_STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM "
    "NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AA AE AP PR GU VI AS MP".split()
)
