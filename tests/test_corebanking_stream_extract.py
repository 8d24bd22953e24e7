"""The extraction Lambda's code: a DynamoDB stream event of core banking's transactions table -> protected
records on the stream, as the producer sends them; erased customers' transactions never leave."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from boto3.dynamodb.types import TypeSerializer

from cdp.backends import Backends
from cdp.corebanking.stream_extract import extract, new_transactions
from cdp.oltp.dynamodb import TRANSACTION, _item, transaction_key
from cdp.oltp.erasures import Erasure
from cdp.oltp.records import normalise_transaction
from cdp.settings import Settings
from cdp.stream.port import PutRecordResult, PutResult
from cdp.streaming import records


def _txn(line: int, user: int = 17) -> dict:
    return normalise_transaction(
        dict(
            line=line,
            user=user,
            card=2,
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
        ),
        line,
    )


def _stream_record(row: dict, event: str = "INSERT") -> dict:
    item = _item(
        TRANSACTION, row, transaction_key(row["user"], row["card"], row["ts"], row["transaction_id"])
    )
    image = {name: TypeSerializer().serialize(value) for name, value in item.items()}
    return {"eventName": event, "dynamodb": {"NewImage": image} if event != "REMOVE" else {}}


class _Stream:
    def __init__(self) -> None:
        self.sent = []

    def put_records(self, batch):
        self.sent += batch
        return PutResult([PutRecordResult("shardId-0", str(i)) for i, _ in enumerate(batch)], 0)


@pytest.fixture
def backends(tmp_path):
    real = Backends(Settings(home=tmp_path / "home"))
    return SimpleNamespace(oltp=real.oltp, protector=real.protector, stream=_Stream())


def test_inserts_are_protected_and_put_by_card_token_other_events_ignored(backends) -> None:
    rows = [_txn(1), _txn(2)]
    event = {"Records": [_stream_record(r) for r in rows] + [_stream_record(_txn(3), "REMOVE")]}
    table, ignored = new_transactions(event)
    assert table.num_rows == 2 and ignored == 1
    report = extract(event, backends)
    assert (report.inserts, report.sent, report.erased, report.ignored) == (2, 2, 0, 1)
    sent = backends.stream.sent
    decoded = [records.decode(r.data) for r in sent]
    assert [r.partition_key for r in sent] == [d["card_token"] for d in decoded]
    assert {d["amount_cents"] for d in decoded} == {-1999}
    for d in decoded:  # protected: tokens, no ids or source line
        assert "user" not in d and "card" not in d and "line" not in d
        assert isinstance(d["txn_id"], str)


def test_an_erased_customers_transactions_are_not_sent(backends) -> None:
    backends.oltp.record_erasure(
        Erasure(user=18, erased_at=datetime.now(UTC).replace(tzinfo=None, microsecond=0), actor="dpo",
                role="privacy-officer", hold_until=date(2030, 1, 1))
    )  # fmt: skip
    event = {"Records": [_stream_record(_txn(1)), _stream_record(_txn(2, user=18))]}
    report = extract(event, backends)
    assert (report.sent, report.erased) == (1, 1)
    assert len(backends.stream.sent) == 1
