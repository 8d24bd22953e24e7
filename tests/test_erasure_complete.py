"""Complete erasure within the law: a tombstone that reloads and replays respect, transactions under a
legal hold (hidden, then purged), and everything else about the customer gone at once.

Every attack here succeeds on a platform that only shreds the data key and deletes the core-banking rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.csv as pv
import pytest
from typer.testing import CliRunner

from app.cli import app
from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.compliance.leakscan import LeakScanner
from cdp.corebanking.erasure import CustomerWasErased, forget_customer
from cdp.corebanking.export import export_customer
from cdp.corebanking.load import load_core_banking
from cdp.corebanking.retention import held_transactions, purge
from cdp.ibm.quarantine import read_quarantine
from cdp.oltp import LEGAL_HOLD_PURPOSE, Counts, Erasure, OltpStore
from cdp.oltp.erasures import hold_end
from cdp.security.errors import AccessDenied
from cdp.security.vault import Caller
from cdp.settings import get_settings
from cdp.streaming.produce import produce, read_erased_quarantine, stream_rows
from cdp.synth.generator import generate
from tests.contract.test_oltp_contract import loaded, store, transaction_rows  # noqa: F401 - fixtures
from tests.identity_support import issue

USERS = 6
DPO = Caller("dpo-1", "privacy-officer")
ERASED_AT = datetime(2026, 3, 2, 10, 30)


# -- the OLTP port, both adapters ------------------------------------------------------------------------
def _erasure(user: int = 0, **changes) -> Erasure:
    base = Erasure(
        user=user,
        erased_at=ERASED_AT,
        actor="dpo-1",
        role="privacy-officer",
        hold_until=hold_end(ERASED_AT, 5),
        request_id="req-7",
        cards=(0, 1),
    )
    return Erasure(**{**base.__dict__, **changes})


def act_as(monkeypatch, name: str, *roles: str) -> None:
    """Run the next CLI commands as an identity issued by the administrator (`CDP_IDENTITY_FILE`)."""
    monkeypatch.setenv("CDP_IDENTITY_FILE", str(issue(Backends(), name, *roles)))
    get_settings.cache_clear()


def test_the_tombstone_is_stored_once_and_the_first_one_stays(store: OltpStore) -> None:  # noqa: F811
    assert store.get_erasure(0) is None and list(store.iter_erasures()) == []
    first = store.record_erasure(_erasure())
    assert first == _erasure() and first.hold_until == date(2031, 3, 2)
    again = store.record_erasure(_erasure(erased_at=ERASED_AT + timedelta(days=3), role="someone"))
    assert again == first and store.get_erasure(0) == first
    store.record_erasure(_erasure(1, request_id=None, cards=()))
    assert sorted(e.user for e in store.iter_erasures()) == [0, 1]
    assert store.get_erasure(1).request_id is None and store.get_erasure(1).cards == ()
    assert store.counts() == Counts(customers=0, cards=0, transactions=0)  # tombstones are not customers


def test_held_transactions_are_only_visible_for_the_legal_hold(loaded: OltpStore) -> None:  # noqa: F811
    loaded.put_transactions(transaction_rows(0, 0, n=6) + transaction_rows(0, 1, n=3, first_line=100))
    loaded.put_transactions(transaction_rows(1, 0, n=4, first_line=200))
    assert len(loaded.transactions_for_card(0, 0)) == 6  # not erased yet: visible
    loaded.record_erasure(_erasure())
    loaded.delete_customer(0)
    assert loaded.transactions_for_card(0, 0) == [] and loaded.transactions_for_card(0, 1) == []
    assert loaded.transactions_for_card(0, 0, since=datetime(2000, 1, 1), limit=3) == []
    assert len(loaded.transactions_for_card(0, 0, purpose=LEGAL_HOLD_PURPOSE)) == 6
    assert len(loaded.transactions_for_card(0, 1, purpose=LEGAL_HOLD_PURPOSE)) == 3
    assert len(loaded.transactions_for_card(1, 0)) == 4  # another customer is not affected
    assert loaded.counts().transactions == 13  # held, not deleted


def test_purge_deletes_the_held_transactions_and_keeps_the_tombstone(loaded: OltpStore) -> None:  # noqa: F811
    loaded.put_transactions(transaction_rows(0, 0, n=6) + transaction_rows(0, 1, n=3, first_line=100))
    loaded.put_transactions(transaction_rows(1, 0, n=4, first_line=200))
    assert loaded.purge_held_transactions(0, datetime(2031, 3, 2)) == 0  # no tombstone: nothing happens
    assert loaded.counts().transactions == 13
    loaded.record_erasure(_erasure())
    assert loaded.purge_held_transactions(0, datetime(2031, 3, 2, 1)) == 9
    assert loaded.transactions_for_card(0, 0, purpose=LEGAL_HOLD_PURPOSE) == []
    assert loaded.counts().transactions == 4 and len(loaded.transactions_for_card(1, 0)) == 4
    assert loaded.get_erasure(0).purged_at == datetime(2031, 3, 2, 1)
    assert loaded.purge_held_transactions(0, datetime(2031, 3, 3)) == 0


# -- the platform, end to end on generated data ---------------------------------------------------------
@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=USERS, seed=11, workers=1)
    return out


def _pii_of(source: Path, user: int) -> list[str]:
    users = pv.read_csv(source / "sd254_users.csv").to_pylist()
    cards = pv.read_csv(
        source / "sd254_cards.csv", convert_options=pv.ConvertOptions(column_types={"Card Number": "string"})
    ).to_pylist()
    contacts = pv.read_csv(source / "core_banking" / "contacts.csv").to_pylist()
    mine = [c for c in cards if c["User"] == user]
    return [
        users[user]["Person"],
        users[user]["Address"],
        *[c["Card Number"] for c in mine],
        *[c["Email"] for c in contacts if c["User"] == user],
    ]


def _cards_in_file(source: Path, user: int) -> int:
    return sum(1 for c in pv.read_csv(source / "sd254_cards.csv").to_pylist() if c["User"] == user)


def _busiest_stream_user(source: Path, b: Backends) -> int:
    rows, _ = stream_rows(source, b)
    users = rows["user"].to_pylist()
    return max(set(users), key=users.count)


def test_forget_then_load_does_not_bring_the_customer_back(source, isolated_home):
    b = Backends()
    load_core_banking(source, b)
    forget_customer(2, DPO, b)
    report = load_core_banking(source, b)
    assert b.oltp.get_customer(2) is None and b.oltp.list_cards(2) == []
    assert b.oltp.counts().customers == USERS - 1
    assert report.customers == USERS - 1 and report.erased == 1 + _cards_in_file(source, 2)
    quarantine_dir = b.settings.state_dir / "load-quarantine"
    erased = [r for r in read_quarantine(quarantine_dir).to_pylist() if r["reason"] == "erased"]
    assert {(r["file"], r["line"]) for r in erased if r["file"] == "sd254_users.csv"} == {
        ("sd254_users.csv", 4)
    }
    assert len(erased) == report.erased
    assert all(r["raw"] is None and r["field"] is None for r in erased)
    assert LeakScanner(_pii_of(source, 2)).scan([quarantine_dir]) == []
    assert b.oltp.get_customer(3) is not None  # everyone else reloads


def test_forget_then_replay_stores_and_sends_nothing_of_the_customer(source, isolated_home):
    b = Backends()
    load_core_banking(source, b)
    user = _busiest_stream_user(source, b)
    first = produce(source, b, limit=40)
    held_before = sum(1 for r in stream_rows(source, b)[0].slice(0, 40)["user"].to_pylist() if r == user)
    card_tokens = {b.protector.card_token(user, c["card_index"]) for c in b.oltp.list_cards(user)}
    cache = b.settings.state_dir / "stream-source.parquet"
    assert cache.exists()  # the first slice kept the stream's source rows for the next ones
    forget_customer(user, DPO, b)
    assert not cache.exists()  # they hold the customer's rows: the erasure drops them
    rest = produce(source, b)
    total = first.total
    # Every replayed row is counted once: sent, or quarantined as erased.
    assert first.sent + first.erased + rest.sent + rest.erased == total
    assert first.erased == 0 and rest.erased > 0
    quarantined = read_erased_quarantine(b).to_pylist()
    assert len(quarantined) == rest.erased
    assert all(r["reason"] == "erased" and r["raw"] is None and r["field"] is None for r in quarantined)
    assert b.oltp.counts().transactions == first.sent + rest.sent
    # Core banking holds only what arrived before the erasure, and only for the legal hold.
    assert held_transactions(user, DPO, b) and len(held_transactions(user, DPO, b)) == held_before
    # Nothing of the customer went onto the stream after the erasure (records are in put order).
    with sqlite3.connect(b.settings.state_dir / "stream.sqlite") as con:
        keys = [k for (k,) in con.execute("SELECT partition_key FROM stream_records ORDER BY sequence")]
    assert len(keys) == first.sent + rest.sent
    assert card_tokens & set(keys[: first.sent]) and not card_tokens & set(keys[first.sent :])


def test_held_transactions_are_hidden_then_purged_when_the_hold_ends(source, isolated_home, monkeypatch):
    b = Backends()
    load_core_banking(source, b)
    user = _busiest_stream_user(source, b)
    produce(source, b)
    cards = [c["card_index"] for c in b.oltp.list_cards(user)]
    held = sum(len(b.oltp.transactions_for_card(user, c)) for c in cards)
    assert held > 0
    erased = forget_customer(user, DPO, b, request_id="req-42", now=datetime(2026, 3, 2, 9, tzinfo=UTC))
    assert erased.hold_until == date(2031, 3, 2)
    tomb = b.oltp.get_erasure(user)
    assert (tomb.actor, tomb.role, tomb.request_id, tomb.cards) == (
        "dpo-1",
        "privacy-officer",
        "req-42",
        tuple(cards),
    )
    # The analytics/export read path sees nothing; the legal-hold path sees all of it, for its role only.
    assert all(b.oltp.transactions_for_card(user, c) == [] for c in cards)
    assert len(held_transactions(user, DPO, b)) == held
    with pytest.raises(AccessDenied):
        held_transactions(user, Caller("m-1", "marketing"), b)
    before = b.oltp.counts().transactions
    early = purge(b, now=datetime(2031, 3, 1, 23, tzinfo=UTC))
    assert (early.holds_ended, early.transactions, early.holds_active) == (0, 0, 1)
    assert len(held_transactions(user, DPO, b)) == held
    act_as(monkeypatch, "dpo-cli", "privacy-officer")
    result = CliRunner().invoke(app, ["retention", "purge", "--now", "2031-03-02"])
    assert result.exit_code == 0, result.output
    assert f"{held:,} held transactions of 1 erased customers deleted" in result.output
    assert held_transactions(user, DPO, b) == []
    assert b.oltp.counts().transactions == before - held
    assert b.oltp.get_erasure(user).purged_at is not None  # the tombstone stays: no reload after a purge
    assert load_core_banking(source, b).erased > 0 and b.oltp.get_customer(user) is None
    purges = [r for r in b.audit.records() if r.action == "retention-purge"]
    assert [r.details["transactions"] for r in purges] == [0, held]
    assert CliRunner().invoke(app, ["retention", "purge", "--now", "not-a-date"]).exit_code == 2


def test_export_before_erasure_is_deleted_and_export_after_says_erased(source, isolated_home, monkeypatch):
    b = Backends()
    load_core_banking(source, b)
    other = export_customer(1, DPO, b)
    path = export_customer(0, DPO, b)
    assert path.exists()
    report = forget_customer(0, DPO, b, now=datetime(2026, 3, 2, 9, tzinfo=UTC))
    assert not path.exists() and report.exports == 1
    assert other.exists()  # someone else's export is theirs to keep until it expires
    with pytest.raises(CustomerWasErased, match=r"^customer erased on 2026-03-02 by privacy-officer$"):
        export_customer(0, DPO, b)
    act_as(monkeypatch, "dpo-cli", "privacy-officer")
    result = CliRunner().invoke(app, ["export", "--user", "0"])
    assert result.exit_code == 4
    assert result.output.strip() == "no export: customer erased on 2026-03-02 by privacy-officer"
    assert sorted(p.name for p in path.parent.iterdir()) == [other.name]  # no file written
    exports = [(r.outcome, r.customer_token) for r in b.audit.records() if r.action == "export"]
    assert exports[-2:] == [("rejected", "-"), ("rejected", "-")]
    with pytest.raises(AccessDenied):  # the erasure date is not told to a role that may not export
        export_customer(0, Caller("m-1", "marketing"), b)


def test_expired_exports_are_removed_by_the_next_export_and_by_the_purge(source, isolated_home):
    b = Backends()
    load_core_banking(source, b)
    old = export_customer(0, DPO, b)
    week_ago = (datetime.now(UTC) - timedelta(days=b.settings.export_ttl_days, minutes=1)).timestamp()
    os.utime(old, (week_ago, week_ago))
    fresh = export_customer(1, DPO, b)
    assert not old.exists() and fresh.exists()
    assert purge(b).exports == 0 and fresh.exists()
    assert purge(b, now=datetime.now(UTC) + timedelta(days=8)).exports == 1 and not fresh.exists()


def test_export_ttl_is_a_setting(source, isolated_home, monkeypatch):
    from cdp.settings import Settings

    monkeypatch.setenv("CDP_EXPORT_TTL_DAYS", "30")
    monkeypatch.setenv("CDP_LEGAL_HOLD_YEARS", "10")
    s = Settings()
    assert s.export_ttl_days == 30 and s.legal_hold_years == 10
    b = Backends(s)
    load_core_banking(source, b)
    assert forget_customer(0, DPO, b, now=datetime(2026, 3, 2, tzinfo=UTC)).hold_until == date(2036, 3, 2)


def test_lake_customer_and_card_rows_and_online_state_go_at_erasure(source, isolated_home):
    b = Backends()
    load_core_banking(source, b)
    run_batch(source, b)
    token = b.protector.user_token(3)
    other = b.protector.user_token(4)
    cards = b.catalog.query(f"SELECT card_token FROM cards WHERE user_token = '{token}'").to_pylist()
    card_tokens = [c["card_token"] for c in cards]
    assert card_tokens
    b.online_store.put_many(
        {f"fraud#{t}": b"state" for t in card_tokens} | {f"customer#{token}": b"s", f"fraud#{other}": b"s"}
    )
    b.online_store.snapshot()
    customers_before = b.catalog.query("SELECT count(*) AS n FROM customers").to_pylist()[0]["n"]
    lake_txns = b.catalog.query(f"SELECT count(*) AS n FROM transactions WHERE user_token = '{token}'")
    report = forget_customer(3, DPO, b)
    assert report.lake_rows == 1 + len(card_tokens) and report.online_states == len(card_tokens) + 1
    fresh = Backends()  # what any later reader sees
    for table in ("customers", "cards"):
        assert fresh.catalog.query(f"SELECT * FROM {table} WHERE user_token = '{token}'").num_rows == 0
    assert (
        fresh.catalog.query("SELECT count(*) AS n FROM customers").to_pylist()[0]["n"] == customers_before - 1
    )
    assert fresh.catalog.query(f"SELECT * FROM customers WHERE user_token = '{other}'").num_rows == 1
    assert fresh.online_store.keys() == [f"fraud#{other}"]
    # The pseudonymous transactions table is kept (its rows are no longer linkable to the person).
    kept = fresh.catalog.query(f"SELECT count(*) AS n FROM transactions WHERE user_token = '{token}'")
    assert kept.equals(lake_txns)
    audit = [r for r in fresh.audit.records() if r.action == "erase"]
    assert audit and audit[-1].details["lake_rows"] == report.lake_rows
    assert json.dumps(audit[-1].details).find("@") == -1


def test_forget_cli_says_what_was_removed_and_how_long_transactions_are_held(
    source, isolated_home, monkeypatch
):
    load_core_banking(source, Backends())
    act_as(monkeypatch, "m-cli", "marketing")
    denied = CliRunner().invoke(app, ["forget", "--user", "1"])
    assert denied.exit_code == 3 and Backends().oltp.get_erasure(1) is None
    act_as(monkeypatch, "dpo-8", "privacy-officer")
    requested = CliRunner().invoke(app, ["forget", "--user", "1"])
    assert requested.exit_code == 0, requested.output
    request_id = requested.output.split("erasure request ", 1)[1].split()[0]
    act_as(monkeypatch, "dpo-9", "privacy-officer")
    result = CliRunner().invoke(app, ["forget", "confirm", request_id])
    assert result.exit_code == 0, result.output
    today = datetime.now(UTC).date()
    line = " ".join(result.output.split())
    assert f"erased on {today.isoformat()}" in line
    assert f"{1 + _cards_in_file(source, 1)} core-banking records" in line
    assert f"transactions held until {hold_end(datetime.now(UTC), 5).isoformat()}" in line
    monkeypatch.setenv("CDP_ERASURE_APPROVALS", "1")
    get_settings.cache_clear()
    again = CliRunner().invoke(app, ["forget", "--user", "1"])
    assert "already erased" in again.output and Backends().oltp.get_erasure(1).actor == "dpo-9"
