"""The protection module: tokens, field encryption bound to customer + field, crypto-shredding, and
protected tables free of clear PII (checked on the Parquet bytes)."""

from __future__ import annotations

import io
import re
from datetime import date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faker import Faker

from cdp.ibm.schema import CARDS_SCHEMA, TRANSACTIONS_SCHEMA, USERS_SCHEMA
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.sqlite import SqliteAuditLog
from cdp.security.datakeys.sqlite import SqliteDataKeyStore
from cdp.security.errors import CustomerErased, KeyAccessError
from cdp.security.keys.local import LocalKeyring
from cdp.security.protector import PROTECTED_CARDS_SCHEMA, PROTECTED_USERS_SCHEMA, Protector
from cdp.security.tokens import TOKEN_LENGTH, load_or_create_token_key
from cdp.security.vault import Caller, PiiVault

N_USERS = 40
FRAUD_OPS = Caller("analyst-1", "fraud-ops")
DPO = Caller("dpo-1", "privacy-officer")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def luhn_complete(prefix: str) -> str:
    return next(prefix + str(c) for c in range(10) if luhn_ok(prefix + str(c)))


def sample_users(fake: Faker) -> pa.Table:
    rows = []
    for u in range(N_USERS):
        rows.append(
            {
                "line": u + 2, "user": u, "person": fake.name(), "current_age": 40 + u % 30,
                "retirement_age": 66, "birth_year": 1950 + u, "birth_month": 1 + u % 12,
                "gender": "Female" if u % 2 else "Male", "address": fake.street_address(),
                "apartment": None if u % 3 else str(u + 10), "city": "La Verne", "state": "CA",
                "zipcode": f"{91750 + u:05d}" if u else "02921", "latitude": 34.1543 + u / 1000,
                "longitude": -117.7698, "per_capita_income": 29278, "yearly_income": 59696,
                "total_debt": 127613, "fico_score": 787, "num_credit_cards": 2,
            }
        )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=USERS_SCHEMA)


def sample_cards(fake: Faker) -> pa.Table:
    rows = []
    for u in range(N_USERS):
        for c in range(2):
            amex = (u + c) % 7 == 0
            prefix = ("37" + fake.numerify("#" * 12)) if amex else ("4" + fake.numerify("#" * 14))
            rows.append(
                {
                    "line": len(rows) + 2, "user": u, "card_index": c,
                    "card_brand": "Amex" if amex else "Visa", "card_type": "Credit",
                    "card_number": luhn_complete(prefix),
                    "expires": date(2022, 1 + (u + c) % 12, 1), "cvv": fake.numerify("###"),
                    "has_chip": True, "cards_issued": 1, "credit_limit": 24295,
                    "acct_open_date": date(2002, 9, 1), "year_pin_last_changed": 2008,
                    "card_on_dark_web": False,
                }
            )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=CARDS_SCHEMA)


@pytest.fixture
def env(tmp_path):
    keys = LocalKeyring(tmp_path / "keyring.json")
    store = SqliteDataKeyStore(tmp_path / "data_keys.sqlite")
    protector = Protector(load_or_create_token_key(keys, store), keys, store)
    vault = PiiVault(keys, store, SqliteAuditLog(tmp_path / "audit.sqlite", AuditKeys.generate()))
    return protector, vault, keys, store


@pytest.fixture(scope="module")
def fake():
    Faker.seed(11)
    return Faker("en_US")


# -- tokens --------------------------------------------------------------------------------------------
def test_tokens_are_deterministic_distinct_and_fixed_length(env, tmp_path):
    protector, _, keys, store = env
    users = [protector.user_token(u) for u in range(1000)]
    cards = [protector.card_token(u, c) for u in range(200) for c in range(9)]
    assert len(set(users)) == 1000 and len(set(cards)) == 1800
    assert all(t.startswith("usr_") and len(t) == TOKEN_LENGTH for t in users)
    assert all(t.startswith("crd_") and len(t) == TOKEN_LENGTH for t in cards)
    # another run (new objects, same keyring + store) gives the same tokens: joinable across runs
    again = Protector(load_or_create_token_key(keys, store), keys, store)
    assert again.user_token(7) == users[7] and again.card_token(3, 2) == protector.card_token(3, 2)
    # a different platform (other keys) gives unrelated tokens
    other_keys = LocalKeyring(tmp_path / "other" / "keyring.json")
    other_store = SqliteDataKeyStore(tmp_path / "other" / "keys.sqlite")
    other = Protector(load_or_create_token_key(other_keys, other_store), other_keys, other_store)
    assert other.user_token(7) != users[7]


def test_vectorised_tokens_match_scalar_tokens(env):
    protector, *_ = env
    users = pa.array([3, 1, 3, None, 2], pa.int32())
    cards = pa.array([0, 8, 1, 0, None], pa.int8())
    tok = protector.user_token
    assert protector.tokens.user_tokens(users).to_pylist() == [tok(3), tok(1), tok(3), None, tok(2)]
    assert protector.tokens.card_tokens(users, cards).to_pylist() == [
        protector.card_token(3, 0), protector.card_token(1, 8), protector.card_token(3, 1), None, None
    ]  # fmt: skip


# -- field encryption ----------------------------------------------------------------------------------
def test_ciphertext_decrypts_only_for_its_customer_and_field(env):
    protector, vault, *_ = env
    alice, bob = protector.user_token(1), protector.user_token(2)
    ct = protector.encrypt_field(alice, "person", "Alice Example")
    assert ct != protector.encrypt_field(alice, "person", "Alice Example")  # random nonce
    assert "Alice" not in ct and ct.isascii()
    assert vault.reveal(FRAUD_OPS, alice, {"person": ct}, "fraud-alert") == {"person": "Alice Example"}
    protector.encrypt_field(bob, "person", "x")  # bob has a key too
    with pytest.raises(KeyAccessError, match="person"):
        vault.reveal(FRAUD_OPS, bob, {"person": ct}, "fraud-alert")  # another customer
    with pytest.raises(KeyAccessError, match="email"):
        vault.reveal(FRAUD_OPS, alice, {"email": ct}, "fraud-alert")  # another field
    tampered = ct[:-2] + ("A" if ct[-2] != "A" else "B") + ct[-1]
    with pytest.raises(KeyAccessError):
        vault.reveal(FRAUD_OPS, alice, {"person": tampered}, "fraud-alert")
    assert protector.encrypt_field(alice, "apartment", None) is None


def test_erasing_a_customer_breaks_only_their_fields(env):
    protector, vault, _, store = env
    alice, bob = protector.user_token(1), protector.user_token(2)
    a_ct = protector.encrypt_field(alice, "email", "alice@example.com")
    b_ct = protector.encrypt_field(bob, "email", "bob@example.com")
    assert vault.forget(alice, DPO) is True
    protector.evict(alice)
    with pytest.raises(CustomerErased, match=alice):
        vault.reveal(FRAUD_OPS, alice, {"email": a_ct}, "fraud-alert")
    assert vault.reveal(FRAUD_OPS, bob, {"email": b_ct}, "fraud-alert") == {"email": "bob@example.com"}
    with pytest.raises(CustomerErased):  # no new key is ever made for an erased customer
        protector.encrypt_field(alice, "email", "alice@example.com")
    assert store.get(alice) is None


def test_data_keys_are_made_once_per_customer_and_survive_a_new_process(env):
    protector, vault, keys, store = env
    tok = protector.user_token(5)
    ct = protector.encrypt_field(tok, "person", "Jane Doe")
    wrapped = store.get(tok)
    protector.encrypt_field(tok, "address", "1 Main St")
    assert store.get(tok) == wrapped
    fresh = Protector(load_or_create_token_key(keys, store), keys, store, cache_size=1)
    fresh.encrypt_field(fresh.user_token(6), "person", "x")
    ct2 = fresh.encrypt_field(tok, "person", "John Roe")
    assert store.get(tok) == wrapped
    got = vault.reveal(FRAUD_OPS, tok, {"person": ct}, "fraud-alert")["person"]
    assert (got, vault.reveal(FRAUD_OPS, tok, {"person": ct2}, "fraud-alert")["person"]) == (
        "Jane Doe",
        "John Roe",
    )


# -- protected tables ----------------------------------------------------------------------------------
def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="NONE")  # uncompressed: clear values would be visible bytes
    return buf.getvalue()


def _luhn_valid_runs(data: bytes) -> list[str]:
    text = data.decode("latin-1")
    return [m for m in re.findall(r"(?<!\d)\d{15,16}(?!\d)", text) if luhn_ok(m)]


def test_protected_tables_hold_no_clear_pii(env, fake):
    protector, vault, *_ = env
    users, cards = sample_users(fake), sample_cards(fake)
    users = users.append_column("email", pa.array([fake.email() for _ in range(N_USERS)]))
    p_users, p_cards = protector.protect_users(users, k_anonymity=5), protector.protect_cards(cards)
    assert p_users.schema == PROTECTED_USERS_SCHEMA and p_cards.schema == PROTECTED_CARDS_SCHEMA
    assert "cvv" not in p_cards.column_names and "card_number" not in p_cards.column_names

    blob = _parquet_bytes(p_users) + _parquet_bytes(p_cards)
    # the scans do find clear values when they are there (the checks below could fail)
    assert users["person"][0].as_py().encode() in _parquet_bytes(users)
    assert set(_luhn_valid_runs(_parquet_bytes(cards))) == set(cards["card_number"].to_pylist())
    clear_values: list[str] = []
    for col in ("person", "address", "email"):
        clear_values += users[col].to_pylist()
    clear_values += [a for a in users["apartment"].to_pylist() if a and len(a) > 2]
    clear_values += cards["card_number"].to_pylist()
    clear_values += [d.strftime("%m/%Y") for d in cards["expires"].to_pylist()]
    clear_values += [d.strftime("%Y-%m") for d in cards["expires"].to_pylist()]
    leaked = [v for v in clear_values if v.encode() in blob]
    assert not leaked, f"{len(leaked)} clear values found in protected Parquet"
    assert _luhn_valid_runs(blob) == []
    # CVV: no column, and no card row carries its own CVV in any column of the protected card
    for src, row in zip(cards.to_pylist(), p_cards.to_pylist(), strict=True):
        assert all(
            src["cvv"] not in str(v) for k, v in row.items() if not k.endswith("_enc") and k[-5:] != "token"
        )


def test_protected_users_are_coarsened_and_decryptable(env, fake):
    protector, vault, *_ = env
    users = sample_users(fake)
    out = protector.protect_users(users, k_anonymity=1).to_pylist()  # the fixed bands only
    first = out[0]
    assert first["user_token"] == protector.user_token(0)
    assert first["zip3"] == "029" and out[1]["zip3"] == "917"
    assert first["birth_year_band"] == "1950-1954" and out[7]["birth_year_band"] == "1955-1959"
    assert first["latitude"] == 34.2 and first["longitude"] == -117.8
    assert (first["yearly_income"], first["yearly_income_band"]) == (50_000, "50000-59999")
    assert (first["total_debt"], first["total_debt_band"]) == (120_000, "120000-129999")
    assert (first["per_capita_income"], first["per_capita_income_band"]) == (20_000, "20000-29999")
    assert (first["fico_score"], first["fico_score_band"]) == (750, "750-799")
    assert (first["num_credit_cards"], first["num_credit_cards_band"]) == (2, "2")
    assert (first["retirement_age"], first["retirement_age_band"]) == (66, "66")
    assert first["email_enc"] is None
    assert out[1]["apartment_enc"] is None and out[0]["apartment_enc"] is not None
    for gone in ("birth_month", "birth_year", "current_age", "zipcode", "line", "user", "person", "address"):
        assert gone not in first
    fields = {"person": out[3]["person_enc"], "address": out[3]["address_enc"]}
    clear = vault.reveal(FRAUD_OPS, out[3]["user_token"], fields, "fraud-alert")
    assert clear == {"person": users["person"][3].as_py(), "address": users["address"][3].as_py()}


def test_protect_card_drops_cvv_and_keeps_last4(env, fake):
    protector, vault, *_ = env
    card = sample_cards(fake).to_pylist()[3]
    out = protector.protect_card(card)
    assert set(out) == set(PROTECTED_CARDS_SCHEMA.names)
    assert not any("cvv" in k for k in out)
    assert out["pan_last4"] == card["card_number"][-4:]
    assert card["card_number"] not in str(out) and card["cvv"] not in str(out.get("pan_last4"))
    assert out["card_token"] == protector.card_token(card["user"], card["card_index"])
    clear = vault.reveal(FRAUD_OPS, out["user_token"], {"expires": out["expires_enc"]}, "fraud-alert")
    assert clear == {"expires": card["expires"].strftime("%Y-%m")}


def test_protect_transactions_replaces_ids_by_tokens(env):
    protector, *_ = env
    rows = [
        {"line": 2, "user": 0, "card": 1, "ts": datetime(2002, 9, 1, 6, 21), "amount_cents": 13409,
         "channel": "swipe", "merchant_id": 3527213246127876953, "merchant_city": "La Verne",
         "merchant_state": "CA", "zip": "91750", "mcc": 5300, "errors": [], "is_fraud": False},
        {"line": 3, "user": 4, "card": 0, "ts": datetime(2015, 11, 16, 11, 20), "amount_cents": -47300,
         "channel": "online", "merchant_id": -1234567890123456789, "merchant_city": "ONLINE",
         "merchant_state": None, "zip": None, "mcc": 3640, "errors": ["Bad PIN"], "is_fraud": True},
    ]  # fmt: skip
    out = protector.protect_transactions(pa.Table.from_pylist(rows, schema=TRANSACTIONS_SCHEMA))
    assert out.column_names[:2] == ["user_token", "card_token"]
    assert "user" not in out.column_names and "card" not in out.column_names
    assert out["user_token"].to_pylist() == [protector.user_token(0), protector.user_token(4)]
    assert out["card_token"].to_pylist() == [protector.card_token(0, 1), protector.card_token(4, 0)]
    assert out["amount_cents"].to_pylist() == [13409, -47300]
    single = protector.protect_transaction(rows[1])
    assert single["card_token"] == protector.card_token(4, 0) and "user" not in single
    assert single["errors"] == ["Bad PIN"]


def test_protect_users_rejects_a_table_without_the_clean_columns(env):
    protector, *_ = env
    with pytest.raises(ValueError, match="lacks columns"):
        protector.protect_users(pa.table({"user": pa.array([1], pa.int32())}), k_anonymity=5)


def test_protect_user_record_matches_the_table_path(env, fake):
    protector, vault, *_ = env
    record = sample_users(fake).to_pylist()[4] | {"email": "someone@example.com"}
    out = protector.protect_user(record)
    assert set(out) == set(PROTECTED_USERS_SCHEMA.names)
    assert out["user_token"] == protector.user_token(4) and out["birth_year_band"] == "1950-1954"
    assert (out["fico_score"], out["fico_score_band"]) == (750, "750-799")
    assert (out["yearly_income"], out["yearly_income_band"]) == (50_000, "50000-59999")
    assert record["person"] not in str(out) and "someone@example.com" not in str(out)
    clear = vault.reveal(FRAUD_OPS, out["user_token"], {"email": out["email_enc"]}, "fraud-alert")
    assert clear == {"email": "someone@example.com"}
