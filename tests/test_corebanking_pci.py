"""PCI DSS in core banking: after `cdp load` the store holds no CVV in any form and no clear PAN.

Attacks open the store the way an intruder with file access would (plain sqlite3, raw bytes of the file
and its WAL); they pass on nothing the old code wrote. A store written by the old code (its schema's SQL,
by hand) is migrated: CVVs gone, PANs encrypted, no old value left in free pages or in the log.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cdp.backends import Backends
from cdp.compliance.leakscan import luhn_valid, scan_core_banking
from cdp.corebanking.cards import decrypt_pan
from cdp.corebanking.cvv import issue_card_cvv, verify_card_cvv
from cdp.corebanking.erasure import forget_customer
from cdp.corebanking.load import load_core_banking
from cdp.corebanking.migrate import migrate_core_banking
from cdp.ibm.quarantine import Quarantine
from cdp.ibm.reader import read_cards
from cdp.oltp.dynamodb import DynamoDbOltpStore
from cdp.oltp.port import LegacyStoreError
from cdp.oltp.sqlite import DB_FILE
from cdp.security.errors import CustomerErased
from cdp.security.vault import Caller
from cdp.synth.generator import generate
from tests.identity_support import issue

USERS = 3
_PAN_RUN = re.compile(rb"(?<![0-9])\d{15,16}(?![0-9])")

# The cards table as the previous release created it (its `create_table_sql(CARD)`), by hand.
OLD_CARDS_SQL = """CREATE TABLE IF NOT EXISTS cards (
  "line" INTEGER,
  "user" INTEGER NOT NULL,
  "card_index" INTEGER NOT NULL,
  "card_brand" TEXT,
  "card_type" TEXT,
  "card_number" TEXT,
  "expires" TEXT,
  "cvv" TEXT,
  "has_chip" INTEGER,
  "cards_issued" INTEGER,
  "credit_limit" INTEGER,
  "acct_open_date" TEXT,
  "year_pin_last_changed" INTEGER,
  "card_on_dark_web" INTEGER,
  PRIMARY KEY ("user", "card_index")
) STRICT, WITHOUT ROWID"""
OLD_COLUMNS = (
    "line", "user", "card_index", "card_brand", "card_type", "card_number", "expires", "cvv", "has_chip",
    "cards_issued", "credit_limit", "acct_open_date", "year_pin_last_changed", "card_on_dark_web",
)  # fmt: skip


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=USERS, seed=5, workers=1)
    return out


@pytest.fixture(scope="module")
def source_cards(source, tmp_path_factory) -> list[dict]:
    with Quarantine(tmp_path_factory.mktemp("q")) as q:
        return read_cards(source / "sd254_cards.csv", q).to_pylist()


def _cvvs(cards: list[dict]) -> dict[tuple[int, int], str]:
    return {(c["user"], c["card_index"]): c["cvv"] for c in cards}


def _scan(path: Path, cards: list[dict]) -> list:
    return scan_core_banking(path, _cvvs(cards), [c["card_number"] for c in cards])


def _store_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def _luhn_runs(raw: bytes) -> list[bytes]:
    return [m.group() for m in _PAN_RUN.finditer(raw) if luhn_valid(m.group().decode())]


def _columns(con: sqlite3.Connection) -> dict[str, list[str]]:
    tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: [r[1] for r in con.execute(f'PRAGMA table_info("{t}")')] for t in tables}


def _write_old_store(path: Path, cards: list[dict]) -> sqlite3.Connection:
    """A store as the old code left it: WAL mode, cards with CVV and clear PAN. The connection stays open
    (so the rows stay in the WAL until the migration checkpoints)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(OLD_CARDS_SQL)
    values = []
    for c in cards:
        row = dict(c, expires=c["expires"].isoformat(), acct_open_date=c["acct_open_date"].isoformat())
        row.update(has_chip=int(row["has_chip"]), card_on_dark_web=int(row["card_on_dark_web"]))
        values.append(tuple(row[n] for n in OLD_COLUMNS))
    con.execute("BEGIN")
    con.executemany(f"INSERT INTO cards VALUES ({', '.join('?' * len(OLD_COLUMNS))})", values)
    con.execute("COMMIT")
    return con


def test_after_load_the_store_holds_no_cvv_and_no_clear_pan(source, source_cards) -> None:
    b = Backends()
    report = load_core_banking(source, b)
    assert report.cards == len(source_cards) and report.migrated_cards == 0
    path = b.settings.state_dir / DB_FILE
    raw = _store_bytes(path)
    assert path.with_name(DB_FILE + "-wal").exists()  # the log is part of what is searched
    assert _luhn_runs(raw) == []
    assert not any(c["card_number"].encode() in raw for c in source_cards)

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    columns = _columns(con)
    assert not any(re.search("cvv|cvc|security", col, re.I) for cols in columns.values() for col in cols)
    assert "card_number" not in columns["cards"]
    rows = [dict(zip(columns["cards"], r, strict=True)) for r in con.execute("SELECT * FROM cards")]
    con.close()
    by_key = {(c["user"], c["card_index"]): c for c in source_cards}
    assert len(rows) == len(source_cards)
    for row in rows:
        src = by_key[(row["user"], row["card_index"])]
        assert src["cvv"] not in {v for v in row.values() if isinstance(v, str)}
        assert row["card_number_enc"].startswith("1") and src["card_number"] not in row["card_number_enc"]
        assert row["pan_last4"] == src["card_number"][-4:]
        token = b.protector.user_token(row["user"])  # the ciphertext is the customer's: it opens to the PAN
        assert decrypt_pan(b.keys, b.data_keys, token, row["card_number_enc"]) == src["card_number"]
    assert _scan(path, source_cards) == []


def test_the_scan_finds_cvv_and_clear_pan_in_a_store_of_the_old_code(source_cards, tmp_path) -> None:
    path = tmp_path / DB_FILE
    con = _write_old_store(path, source_cards)
    kinds = {(f.kind, f.where) for f in _scan(path, source_cards)}
    assert ("forbidden_column", "cards.cvv") in kinds and ("forbidden_column", "cards.card_number") in kinds
    assert ("cvv", "cards.cvv") in kinds and ("card_number", "table cards") in kinds
    assert any(k == "card_number" and w == "raw bytes" for k, w in kinds)
    # a CVV kept under an innocent name, next to its card, is still found
    con.execute("ALTER TABLE cards RENAME COLUMN cvv TO sec_code")
    kinds = {(f.kind, f.where) for f in _scan(path, source_cards)}
    assert ("cvv", "cards.sec_code") in kinds
    con.close()


def test_an_old_store_is_refused_then_migrated_without_leftovers(source, source_cards) -> None:
    b = Backends()
    path = b.settings.state_dir / DB_FILE
    old = _write_old_store(path, source_cards)
    with pytest.raises(LegacyStoreError, match="run `cdp migrate-core-banking`") as err:
        b.oltp.get_card(0, 0)
    assert not any(c["card_number"] in str(err.value) for c in source_cards)
    assert b.oltp.counts().cards == len(source_cards)  # the rest of the store still works

    assert migrate_core_banking(b).cards == len(source_cards)
    raw = _store_bytes(path)
    assert _luhn_runs(raw) == [] and not any(c["card_number"].encode() in raw for c in source_cards)
    assert path.with_name(DB_FILE + "-wal").stat().st_size == 0  # the log was truncated
    assert "cvv" not in _columns(old)["cards"] and "card_number" not in _columns(old)["cards"]
    assert _scan(path, source_cards) == []
    old.close()
    for src in source_cards:
        card = b.oltp.get_card(src["user"], src["card_index"])
        assert card["credit_limit"] == src["credit_limit"] and card["expires"] == src["expires"]
        assert card["pan_last4"] == src["card_number"][-4:]
        token = b.protector.user_token(src["user"])
        assert decrypt_pan(b.keys, b.data_keys, token, card["card_number_enc"]) == src["card_number"]
    assert migrate_core_banking(b).cards == 0  # idempotent
    assert load_core_banking(source, b).migrated_cards == 0


def test_load_migrates_an_old_store_first(source, source_cards) -> None:
    b = Backends()
    _write_old_store(b.settings.state_dir / DB_FILE, source_cards).close()
    report = load_core_banking(source, b)
    assert report.migrated_cards == len(source_cards) and report.cards == len(source_cards)
    assert _scan(b.settings.state_dir / DB_FILE, source_cards) == []


def test_the_cli_names_the_migration_and_runs_it(source_cards, isolated_home) -> None:
    old = _write_old_store(isolated_home / "state" / DB_FILE, source_cards)
    old.close()
    dpo = issue(Backends(), "dpo-1", "privacy-officer")

    def cli(*args: str) -> subprocess.CompletedProcess:
        env = {"CDP_HOME": str(isolated_home), "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path),
               "CDP_IDENTITY_FILE": str(dpo)}  # fmt: skip
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True
        )

    refused = cli("export", "--user", "0")  # card calls on an old store are refused until it is migrated
    assert refused.returncode == 2 and "cdp migrate-core-banking" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    done = cli("migrate-core-banking")
    assert done.returncode == 0 and f"{len(source_cards)} cards migrated" in done.stdout
    assert "nothing to migrate" in cli("migrate-core-banking").stdout


def test_cvv_verification_recomputes_and_never_looks_up(source, source_cards) -> None:
    b = Backends()
    load_core_banking(source, b)
    first = source_cards[0]
    user, index = first["user"], first["card_index"]
    cvv = issue_card_cvv(user, index, b)
    assert verify_card_cvv(user, index, cvv, b) is True
    assert verify_card_cvv(user, index, f"{(int(cvv) + 1) % 1000:03d}", b) is False
    assert verify_card_cvv(user, 9, cvv, b) is False and verify_card_cvv(99, 0, cvv, b) is False
    # CVVs in the files were issued by another system: they do not verify under this issuer's key
    # (bar a 1-in-1000 coincidence per card)
    issued_elsewhere = [verify_card_cvv(c["user"], c["card_index"], c["cvv"], b) for c in source_cards]
    assert sum(issued_elsewhere) < len(source_cards) / 2
    kept = b.oltp.get_card(user, index)["card_number_enc"]
    forget_customer(user, Caller("dpo-1", "privacy-officer"), b)
    assert verify_card_cvv(user, index, cvv, b) is False
    with pytest.raises(CustomerErased):  # a copy of the ciphertext is crypto-shredded too
        decrypt_pan(b.keys, b.data_keys, b.protector.user_token(user), kept)


@pytest.fixture
def dynamo(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        store = DynamoDbOltpStore(boto3.resource("dynamodb", region_name="eu-west-1"), "bank-")
        store.create_tables()
        yield store


def test_dynamodb_old_items_are_migrated_and_new_ones_never_hold_a_cvv(dynamo, source, source_cards) -> None:
    b = Backends()
    b.oltp = dynamo  # core banking in DynamoDB; keys and data keys local
    cards = dynamo._resource.Table("bank-cards")
    for c in source_cards:  # items as the old code wrote them
        cards.put_item(
            Item={
                "pk": f"USER#{c['user']}",
                "sk": f"CARD#{c['card_index']:02d}",
                "user": c["user"],
                "card_index": c["card_index"],
                "card_number": c["card_number"],
                "cvv": c["cvv"],
                "credit_limit": c["credit_limit"],
            }
        )
    assert len(list(dynamo.legacy_cards())) == len(source_cards)
    assert migrate_core_banking(b).cards == len(source_cards)
    assert list(dynamo.legacy_cards()) == [] and migrate_core_banking(b).cards == 0
    items = cards.scan()["Items"]
    by_key = {(c["user"], c["card_index"]): c for c in source_cards}
    for item in items:
        src = by_key[(int(item["user"]), int(item["card_index"]))]
        assert not {"cvv", "card_number"} & set(item) and src["cvv"] not in item.values()
        token = b.protector.user_token(src["user"])
        assert decrypt_pan(b.keys, b.data_keys, token, item["card_number_enc"]) == src["card_number"]
        assert (
            item["pan_last4"] == src["card_number"][-4:] and int(item["credit_limit"]) == src["credit_limit"]
        )
    # a card deleted meanwhile is not re-created by the migration
    row = {"user": 77, "card_index": 0, "card_number_enc": "1x", "pan_last4": "0000"}
    assert dynamo.migrate_cards([row]) == 0 and dynamo.get_card(77, 0) is None
    # loading writes no CVV nor clear PAN either
    load_core_banking(source, b)
    items = cards.scan()["Items"]
    assert len(items) == len(source_cards)
    assert all(not {"cvv", "card_number"} & set(i) and i["card_number_enc"].startswith("1") for i in items)
