"""The one masking module of the platform (batch, stream and API paths all call it).

- ids -> keyed tokens (`usr_…`, `crd_…`) from each customer's token secret, deterministic and joinable
  until the customer is erased, never again after (see `tokens`);
- direct identifiers (person, address, apartment, email, card number, expiry) -> AES-GCM under the
  customer's data key (see `fieldcrypto` for the string format); data keys are created on first use,
  wrapped by the `KeyManager`, stored in the `DataKeyStore`, and cached unwrapped in an in-memory LRU;
- card number -> also `pan_last4`; CVV is dropped;
- quasi-identifiers banded and the customers table generalised until k-anonymous (see `anonymity`).

Protected tables are built from a whitelist of columns: a column not listed here never reaches the lake.
Encryption only: decryption lives in `cdp.security.vault`, behind a role check and the audit log.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cdp.ibm.schema import CARDS_SCHEMA, USERS_SCHEMA
from cdp.security import anonymity
from cdp.security.datakeys.port import DataKeyStore
from cdp.security.errors import CustomerErased
from cdp.security.fieldcrypto import data_key_context, seal
from cdp.security.keys.port import KeyManager
from cdp.security.tokens import Tokenizer

PROTECTED_USERS_SCHEMA = pa.schema(
    [
        ("user_token", pa.string()),
        ("person_enc", pa.string()),
        ("address_enc", pa.string()),
        ("apartment_enc", pa.string()),  # null when the source has no apartment
        ("email_enc", pa.string()),  # null when the source has no e-mail column/value
        # quasi-identifiers (cdp.security.anonymity): banded, then generalised until k-anonymous
        ("gender", pa.string()),
        ("retirement_age", pa.int16()),
        ("retirement_age_band", pa.string()),  # "67", "65-69", "75+"
        ("birth_year_band", pa.string()),  # "1965-1969", "1960-1969"
        ("city", pa.string()),
        ("state", pa.string()),
        ("zip3", pa.string()),  # "917"
        ("latitude", pa.float64()),  # 1 decimal, or whole degrees
        ("longitude", pa.float64()),  # 1 decimal, or whole degrees
        ("per_capita_income", pa.int64()),  # lower bound of the band
        ("per_capita_income_band", pa.string()),  # "20000-29999", "200000+"
        ("yearly_income", pa.int64()),  # lower bound of the band
        ("yearly_income_band", pa.string()),
        ("total_debt", pa.int64()),  # lower bound of the band
        ("total_debt_band", pa.string()),
        ("fico_score", pa.int16()),  # lower bound of the band
        ("fico_score_band", pa.string()),  # "700-749", "800+"
        ("num_credit_cards", pa.int8()),  # lower bound of the band
        ("num_credit_cards_band", pa.string()),  # "3", "2-3", "6+"
    ]
)

PROTECTED_CARDS_SCHEMA = pa.schema(
    [
        ("card_token", pa.string()),
        ("user_token", pa.string()),
        ("card_brand", pa.string()),
        ("card_type", pa.string()),
        ("pan_last4", pa.string()),
        ("card_number_enc", pa.string()),
        ("expires_enc", pa.string()),  # encrypted "YYYY-MM"
        ("has_chip", pa.bool_()),
        ("cards_issued", pa.int8()),
        ("credit_limit", pa.int64()),
        ("acct_open_date", pa.date32()),
        ("year_pin_last_changed", pa.int16()),
        ("card_on_dark_web", pa.bool_()),
    ]
)

_CARD_PASSTHROUGH = (
    "card_brand", "card_type", "has_chip", "cards_issued", "credit_limit", "acct_open_date",
    "year_pin_last_changed", "card_on_dark_web",
)  # fmt: skip


class Protector:
    """Tokenises, encrypts and coarsens customer data (records or Arrow tables)."""

    def __init__(
        self, token_key: bytes, keys: KeyManager, store: DataKeyStore, cache_size: int = 100_000
    ) -> None:
        self.tokens = Tokenizer(token_key, keys, store)
        self.keys = keys
        self.store = store
        self.cache_size = cache_size
        self._ciphers: OrderedDict[str, AESGCM] = OrderedDict()

    # -- tokens ------------------------------------------------------------------------------------
    def user_token(self, user: int) -> str:
        return self.tokens.user_token(user)

    def card_token(self, user: int, card_index: int) -> str:
        return self.tokens.card_token(user, card_index)

    def shred_tokens(self, user: int) -> bool:
        """Erasure: delete the customer's token secret, so that no one can make their tokens again (and
        `user_token`/`card_token` raise `CustomerErased`); True if a live secret was deleted. Call it after
        the last use of the customer's token (e.g. after deleting their data key under it)."""
        return self.tokens.shred(user)

    # -- field encryption --------------------------------------------------------------------------
    def encrypt_field(self, customer_token: str, field: str, value: str | None) -> str | None:
        """Ciphertext string of one field value under the customer's data key (None stays None)."""
        if value is None:
            return None
        cipher = self._ciphers.get(customer_token)
        if cipher is None:
            cipher = self._load_cipher(customer_token)
        else:
            self._ciphers.move_to_end(customer_token)
        return seal(cipher, customer_token, field, value)

    def evict(self, customer_token: str) -> None:
        """Drop a customer's cached data key (call after erasing them in this process)."""
        self._ciphers.pop(customer_token, None)

    def _load_cipher(self, customer_token: str) -> AESGCM:
        cipher = AESGCM(self._data_key(customer_token))
        self._ciphers[customer_token] = cipher
        if len(self._ciphers) > self.cache_size:
            self._ciphers.popitem(last=False)
        return cipher

    def _data_key(self, customer_token: str) -> bytes:
        context = data_key_context(customer_token)
        wrapped = self.store.get(customer_token)
        if wrapped is None:
            if self.store.is_erased(customer_token):
                raise CustomerErased(customer_token)
            fresh = self.keys.generate_data_key(context)
            if self.store.put_if_absent(customer_token, fresh.wrapped, fresh.key_version, context=context):
                return fresh.plaintext
            wrapped = self.store.get(customer_token)  # another writer created it first: use theirs
            if wrapped is None:
                raise CustomerErased(customer_token)
        return self.keys.decrypt_data_key(wrapped, context)

    # -- Arrow tables ------------------------------------------------------------------------------
    def protect_users(self, table: pa.Table, k_anonymity: int) -> pa.Table:
        """Users in `USERS_SCHEMA` (an optional `email` column too) -> `PROTECTED_USERS_SCHEMA`, k-anonymous.

        Every quasi-identifier is put in its fixed band, then the whole table is generalised until each
        customer shares all of them with at least `k_anonymity - 1` others (`anonymity.k_anonymise`;
        1: the fixed bands only, as `protect_user` gives for one record)."""
        _require(table, USERS_SCHEMA, "users")
        user_tokens = self.tokens.user_tokens(table["user"])
        toks = user_tokens.to_pylist()
        encrypted = {
            f"{f}_enc": self._encrypt_column(toks, f, table[f].to_pylist())
            for f in ("person", "address", "apartment")
        }
        emails = table["email"].to_pylist() if "email" in table.column_names else [None] * table.num_rows
        encrypted["email_enc"] = self._encrypt_column(toks, "email", emails)
        columns: dict[str, Any] = {"user_token": user_tokens, **encrypted}
        columns.update(anonymity.record_level(table))
        return anonymity.k_anonymise(_build(columns, PROTECTED_USERS_SCHEMA), k_anonymity).table

    def protect_cards(self, table: pa.Table) -> pa.Table:
        """Cards in `CARDS_SCHEMA` -> `PROTECTED_CARDS_SCHEMA` (no CVV, PAN/expiry encrypted)."""
        _require(table, CARDS_SCHEMA, "cards")
        user_tokens = self.tokens.user_tokens(table["user"])
        toks = user_tokens.to_pylist()
        expires = [None if d is None else d.strftime("%Y-%m") for d in table["expires"].to_pylist()]
        columns: dict[str, Any] = {
            "card_token": self.tokens.card_tokens(table["user"], table["card_index"]),
            "user_token": user_tokens,
            "pan_last4": pc.utf8_slice_codeunits(table["card_number"], -4),
            "card_number_enc": self._encrypt_column(toks, "card_number", table["card_number"].to_pylist()),
            "expires_enc": self._encrypt_column(toks, "expires", expires),
        }
        columns.update({c: table[c] for c in _CARD_PASSTHROUGH})
        return _build(columns, PROTECTED_CARDS_SCHEMA)

    def protect_transactions(self, table: pa.Table) -> pa.Table:
        """Transactions with `user`/`card` ids -> the same table with `user_token`/`card_token` first;
        `CustomerErased` if a row's customer was erased (`tokens.erased_rows` finds such rows)."""
        for name in ("user", "card"):
            if name not in table.column_names:
                raise ValueError(f"transactions table has no column {name!r}")
        user_tokens = self.tokens.user_tokens(table["user"])
        card_tokens = self.tokens.card_tokens(table["user"], table["card"])
        rest = table.drop_columns(["user", "card"])
        return pa.Table.from_arrays(
            [user_tokens, card_tokens, *rest.columns],
            schema=pa.schema([("user_token", pa.string()), ("card_token", pa.string()), *rest.schema]),
        )

    # -- single records (stream and API paths) ------------------------------------------------------
    def protect_user(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """One users record (clean column names) -> one protected record, quasi-identifiers in their fixed
        bands (one record cannot be k-anonymous: the lake's customers table comes from `protect_users`)."""
        schema = USERS_SCHEMA.append(pa.field("email", pa.string())) if "email" in record else USERS_SCHEMA
        return self.protect_users(_one_row(record, schema), k_anonymity=1).to_pylist()[0]

    def protect_card(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """One cards record -> one protected record: CVV dropped, PAN and expiry encrypted, `pan_last4`."""
        return self.protect_cards(_one_row(record, CARDS_SCHEMA)).to_pylist()[0]

    def protect_transaction(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """One transaction record -> tokens instead of `user`/`card`, every other field unchanged
        (`CustomerErased` if the customer was erased)."""
        out: dict[str, Any] = {
            "user_token": self.user_token(record["user"]),
            "card_token": self.card_token(record["user"], record["card"]),
        }
        out.update((k, v) for k, v in record.items() if k not in ("user", "card"))
        return out

    def _encrypt_column(self, tokens: list[str], field: str, values: list[str | None]) -> pa.Array:
        """Ciphertexts of one column. An erased customer's values become null: once a customer is
        forgotten, re-running a job over old source files never writes their identifiers again."""
        out: list[str | None] = []
        erased: set[str] = set()
        for t, v in zip(tokens, values, strict=True):
            if t in erased:
                out.append(None)
                continue
            try:
                out.append(self.encrypt_field(t, field, v))
            except CustomerErased:
                erased.add(t)
                out.append(None)
        return pa.array(out, pa.string())


def _require(table: pa.Table, schema: pa.Schema, what: str) -> None:
    missing = [n for n in schema.names if n != "line" and n not in table.column_names]
    if missing:
        raise ValueError(f"{what} table lacks columns {missing}")


def _build(columns: dict[str, Any], schema: pa.Schema) -> pa.Table:
    arrays = [pc.cast(columns[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _one_row(record: Mapping[str, Any], schema: pa.Schema) -> pa.Table:
    fields = [f for f in schema if f.name in record or f.name != "line"]
    return pa.Table.from_pylist([dict(record)], schema=pa.schema(fields))
