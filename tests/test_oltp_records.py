"""Record types of the OLTP store: field lists, coercion, refusals, the transaction id, Arrow rows."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pytest

from cdp.ibm.schema import CARDS_SCHEMA, TRANSACTIONS_SCHEMA, USERS_SCHEMA
from cdp.oltp.ids import transaction_id
from cdp.oltp.records import (
    CARD,
    CUSTOMER,
    TRANSACTION,
    Kind,
    RecordError,
    normalise_transaction,
    rows_from_table,
)

TS = datetime(2015, 11, 16, 11, 20)


def test_fields_follow_the_clean_schemas() -> None:
    assert CUSTOMER.names == (*USERS_SCHEMA.names, "email")
    source = [n for n in CARDS_SCHEMA.names if n != "cvv"]
    assert CARD.names == tuple(
        n for s in source for n in (("card_number_enc", "pan_last4") if s == "card_number" else (s,))
    )
    assert TRANSACTION.names == ("transaction_id", *TRANSACTIONS_SCHEMA.names)
    assert not {"cvv", "card_number"} & set(CARD.names)  # never stored, in any form
    assert CARD.readable_names == CARD.names
    assert CUSTOMER.readable_names == CUSTOMER.names
    assert CARD.kind("expires") is Kind.DATE and TRANSACTION.kind("errors") is Kind.STR_LIST
    pii = {f.name for f in CUSTOMER.fields if f.pii}
    assert {"person", "address", "email", "zipcode"} <= pii and "fico_score" not in pii


def test_transaction_id_is_deterministic_opaque_and_line_sensitive() -> None:
    tid = transaction_id(1234, 3, TS, 99)
    assert tid == transaction_id(1234, 3, TS, 99)
    assert re.fullmatch(r"[0-9a-f]{20}", tid) and "1234" not in tid
    others = {
        transaction_id(1234, 3, TS, 100),
        transaction_id(1234, 4, TS, 99),
        transaction_id(1235, 3, TS, 99),
        transaction_id(1234, 3, TS.replace(minute=21), 99),
    }
    assert tid not in others and len(others) == 4
    # the documented rule, spelled out: ids stay stable across releases
    assert tid == hashlib.blake2b(b"1234|3|2015-11-16T11:20:00|99", digest_size=10).hexdigest()


def test_normalise_coerces_numpy_and_iso_values() -> None:
    row = {
        "user": np.int32(7),
        "card_index": np.int8(2),
        "expires": "2022-12-01",
        "has_chip": np.bool_(True),
        "credit_limit": np.int64(24295),
        "pan_last4": "1234",
    }
    out = CARD.normalise(row)
    assert out["user"] == 7 and type(out["user"]) is int
    assert out["expires"] == date(2022, 12, 1) and out["has_chip"] is True and type(out["has_chip"]) is bool
    assert out["card_brand"] is None and set(out) == set(CARD.names)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user", True),
        ("user", 3.0),
        ("user", "3"),
        ("latitude", "34.1"),
        ("latitude", float("nan")),
        ("birth_month", 2**70 * 1.0),
        ("gender", 1),
        ("person", b"Ada"),
    ],
)
def test_normalise_refuses_wrong_types(field, value) -> None:
    row = {"user": 1, "line": 3, field: value}
    with pytest.raises(RecordError, match=f"customers line 3: field '{field}' is not a valid"):
        CUSTOMER.normalise(row)


def test_timestamps_must_be_naive_and_dates_not_datetimes() -> None:
    base = {"user": 0, "card": 0, "line": 2}
    with pytest.raises(RecordError, match="field 'ts'"):
        normalise_transaction(base | {"ts": datetime(2019, 1, 1, tzinfo=UTC)})
    with pytest.raises(RecordError, match="field 'expires'"):
        CARD.normalise({"user": 0, "card_index": 0, "expires": datetime(2022, 1, 1)})
    out = normalise_transaction(base | {"ts": "2019-01-01T10:05:00", "errors": ("Bad PIN",)})
    assert out["ts"] == datetime(2019, 1, 1, 10, 5) and out["errors"] == ["Bad PIN"]
    assert out["transaction_id"] == transaction_id(0, 0, datetime(2019, 1, 1, 10, 5), 2)


def test_a_card_row_with_a_cvv_or_a_clear_pan_is_refused() -> None:
    for field, value in (("cvv", "012"), ("card_number", "4000123412341234")):
        with pytest.raises(RecordError, match=rf"cards line 5: unknown field\(s\) \['{field}'\]") as err:
            CARD.normalise({"user": 0, "card_index": 0, "line": 5, field: value})
        assert value not in str(err.value)


def test_error_names_the_row_position_when_there_is_no_line() -> None:
    with pytest.raises(RecordError, match=r"cards row 4: field 'card_index' is required"):
        CARD.normalise({"user": 1}, position=4)


def test_rows_from_table_gives_python_values_in_bounded_batches() -> None:
    table = pa.Table.from_pylist(
        [
            dict(
                line=i + 2,
                user=0,
                card=1,
                ts=TS,
                amount_cents=-5,
                channel="online",
                merchant_id=-(2**63),
                merchant_city="ONLINE",
                merchant_state=None,
                zip=None,
                mcc=3640,
                errors=["Bad CVV"] if i else [],
                is_fraud=bool(i % 2),
            )
            for i in range(5)
        ],
        schema=TRANSACTIONS_SCHEMA,
    )
    rows = list(rows_from_table(table, batch_size=2))
    assert (
        len(rows) == 5
        and rows[0]["ts"] == TS
        and rows[0]["errors"] == []
        and rows[1]["errors"] == ["Bad CVV"]
    )
    assert rows[0]["merchant_id"] == -(2**63) and rows[0]["zip"] is None
    assert [normalise_transaction(r)["line"] for r in rows] == [2, 3, 4, 5, 6]
    assert list(rows_from_table(table.to_batches()[0])) == rows
