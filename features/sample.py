"""A small deterministic sample of lake rows (transactions + cards) for tests, benchmarks and demos.

Built to stress point-in-time logic: many cards, bursts, several events of a card in the same second,
gaps of exactly 1 h / 24 h / 7 d / 30 d (window edges), refunds, online and foreign rows, error codes.
Tokens are made up (`crd_s…`, `usr_s…`) and nothing is personal data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from cdp.lake.tables import TRANSACTIONS_LAKE_SCHEMA
from cdp.security.anonymity import GENERALISATIONS, Banded
from cdp.security.protector import PROTECTED_CARDS_SCHEMA, PROTECTED_USERS_SCHEMA

if TYPE_CHECKING:
    from cdp.backends import Backends

_CITIES = [("Springfield", "IL"), ("La Verne", "CA"), ("Austin", "TX"), ("Miami", "FL"), ("Salem", "OR")]
_FOREIGN = [("Rome", "Italy"), ("Toronto", "Canada"), ("Lagos", "Nigeria")]
_MCCS = np.array([5411, 5812, 5541, 5311, 4829, 5732, 7011, 3640, 8011, 7832, 4900, 5499, 5814, 9402])
_ERRORS = [
    ["Bad PIN"],
    ["Insufficient Balance"],
    ["Bad CVV"],
    ["Technical Glitch"],
    ["Bad Card Number", "Bad PIN"],
]
_EDGE_GAPS = np.array([3_600, 86_400, 7 * 86_400, 30 * 86_400, 3_601, 86_401, 0, 60])
_START = datetime(2018, 1, 1)


def card_token(i: int) -> str:
    return f"crd_s{i:06d}"


def sample_transactions(events: int, cards: int, seed: int = 0, days: int = 150) -> pa.Table:
    """`events` lake rows over `cards` cards (3 cards per user at most), ordered like the IBM file."""
    rng = np.random.default_rng(seed)
    card = np.sort(rng.integers(0, cards, events))
    gaps = rng.exponential(days * 86_400 * cards / events, events)
    gaps = np.where(rng.random(events) < 0.15, rng.exponential(900, events), gaps)  # bursts
    gaps = np.where(rng.random(events) < 0.05, rng.choice(_EDGE_GAPS, events), gaps)  # edges and ties
    gaps = (gaps // 60 * 60).astype(np.int64)  # minute precision, like the source
    first = np.r_[True, card[1:] != card[:-1]]
    offsets = np.where(first, rng.integers(0, 86_400 * 20, events) // 60 * 60, gaps)
    starts = np.flatnonzero(first)
    epoch = np.cumsum(offsets)
    epoch -= np.repeat(np.r_[0, epoch[starts[1:] - 1]], np.diff(np.r_[starts, events]))
    epoch += int((_START - datetime(1970, 1, 1)).total_seconds())

    kind = rng.choice(3, events, p=[0.55, 0.30, 0.15])  # swipe, chip, online
    foreign = (kind < 2) & (rng.random(events) < 0.04)
    city_idx = (card * 7 + rng.integers(0, 2, events) * rng.integers(0, 5, events)) % len(_CITIES)
    amount = np.round(rng.lognormal(3.4, 1.0, events) * 100).astype(np.int64)
    amount = np.where(rng.random(events) < 0.03, -amount, amount)  # refunds
    merchant = (card.astype(np.int64) * 1_000_003 + rng.integers(0, 12, events)) % 5_000 - 2_500
    merchant = np.where(rng.random(events) < 0.2, rng.integers(-(2**62), 2**62, events), merchant)
    err_pick = rng.integers(0, len(_ERRORS), events)
    has_err = rng.random(events) < 0.03
    fraud = rng.random(events) < 0.01

    ts = pa.array(epoch.astype("datetime64[s]"), pa.timestamp("s"))
    cities, states = [], []
    for k, f, ci, fi in zip(kind, foreign, city_idx, rng.integers(0, len(_FOREIGN), events), strict=True):
        if k == 2:
            cities.append("ONLINE")
            states.append(None)
        elif f:
            cities.append(_FOREIGN[fi][0])
            states.append(_FOREIGN[fi][1])
        else:
            cities.append(_CITIES[ci][0])
            states.append(_CITIES[ci][1])
    channel = np.array(["swipe", "chip", "online"])[kind]
    cards_col = [card_token(int(c)) for c in card]
    lines = np.arange(1, events + 1, dtype=np.int64)
    # like the lake's event_seq: the line plus a per-card offset below 2^30 (a fixed scramble of the card)
    seqs = lines + card.astype(np.int64) * 2_654_435_761 % (1 << 30)
    years = epoch.astype("datetime64[s]").astype("datetime64[Y]").astype(int) + 1970
    months = epoch.astype("datetime64[s]").astype("datetime64[M]").astype(int) % 12 + 1
    return pa.table(
        {
            "txn_id": [f"{c[4:]}-{q}" for c, q in zip(cards_col, seqs, strict=True)],
            "user_token": [f"usr_s{int(c) // 3:06d}" for c in card],
            "card_token": cards_col,
            "ts": ts,
            "amount_cents": amount,
            "channel": channel,
            "merchant_id": merchant,
            "merchant_city": cities,
            "merchant_state": states,
            "zip": [None if k == 2 or f else "91750" for k, f in zip(kind, foreign, strict=True)],
            "mcc": rng.choice(_MCCS, events).astype(np.int16),
            "errors": [_ERRORS[e] if h else [] for e, h in zip(err_pick, has_err, strict=True)],
            "is_fraud": fraud,
            "event_seq": seqs,
            "year": years.astype(np.int32),
            "month": months.astype(np.int32),
        },
        schema=TRANSACTIONS_LAKE_SCHEMA,
    )


def sample_cards(cards: int, seed: int = 0) -> pa.Table:
    """Card rows (PROTECTED_CARDS_SCHEMA) for the sample's cards; encrypted fields left empty."""
    rng = np.random.default_rng(seed + 1)
    n = cards
    return pa.table(
        {
            "card_token": [card_token(i) for i in range(n)],
            "user_token": [f"usr_s{i // 3:06d}" for i in range(n)],
            "card_brand": ["Visa"] * n,
            "card_type": ["Debit"] * n,
            "pan_last4": ["0000"] * n,
            "card_number_enc": [""] * n,
            "expires_enc": [""] * n,
            "has_chip": rng.random(n) < 0.9,
            "cards_issued": np.ones(n, np.int8),
            "credit_limit": rng.integers(1_000, 30_000, n),
            "acct_open_date": [
                date(2010 + int(y), 1 + int(m), 1)
                for y, m in zip(rng.integers(0, 8, n), rng.integers(0, 12, n), strict=True)
            ],
            "year_pin_last_changed": np.full(n, 2015, np.int16),
            "card_on_dark_web": np.zeros(n, bool),
        },
        schema=PROTECTED_CARDS_SCHEMA,
    )


def sample_customers(users: int, seed: int = 0) -> pa.Table:
    """Customer rows (PROTECTED_USERS_SCHEMA) for the sample's users (`usr_s…`); encrypted fields empty,
    numbers in their fixed bands (not generalised further), one user in ten left out (a customer the
    profile join does not find)."""
    rng = np.random.default_rng(seed + 2)
    ids = [i for i in range(users) if i % 10 != 9]
    n = len(ids)
    gender = rng.choice(["Female", "Male"], n)
    birth_year_band = [f"{b}-{b + 4}" for b in (1940 + 5 * rng.integers(0, 12, n))]
    numbers = pa.table(
        {
            "retirement_age": np.full(n, 66, np.int16),
            "per_capita_income": rng.integers(15_000, 60_000, n),
            "yearly_income": rng.integers(20_000, 200_000, n),
            "total_debt": rng.integers(0, 300_000, n),
            "fico_score": rng.integers(500, 850, n).astype(np.int16),
            "num_credit_cards": rng.integers(1, 9, n).astype(np.int8),
        }
    )
    banded = {}
    for g in GENERALISATIONS:
        if isinstance(g, Banded):
            banded.update(g.record(numbers))
    columns = {
        "user_token": [f"usr_s{i:06d}" for i in ids],
        "person_enc": [""] * n,
        "address_enc": [""] * n,
        "apartment_enc": [None] * n,
        "email_enc": [None] * n,
        "gender": gender,
        "birth_year_band": birth_year_band,
        "city": ["Austin"] * n,
        "state": ["TX"] * n,
        "zip3": ["787"] * n,
        "latitude": np.full(n, 30.3),
        "longitude": np.full(n, -97.7),
        **banded,
    }
    return pa.table({f.name: columns[f.name] for f in PROTECTED_USERS_SCHEMA}, schema=PROTECTED_USERS_SCHEMA)


def write_sample_lake(
    backends: Backends,
    transactions: pa.Table,
    cards: pa.Table | None,
    chunk: str = "0",
    customers: pa.Table | None = None,
) -> None:
    """Write sample rows into the lake (one chunk of transactions, the cards and customers tables) and
    register them."""
    from cdp.lake.tables import CARDS, CUSTOMERS, TRANSACTIONS
    from cdp.lake.writer import LakeWriter

    bucket = backends.settings.lake_bucket
    writer = LakeWriter(backends.object_store, bucket)
    writer.write_chunk(TRANSACTIONS, transactions, chunk)
    if cards is not None:
        writer.replace_table(CARDS, cards)
    if customers is not None:
        writer.replace_table(CUSTOMERS, customers)
    for table in (TRANSACTIONS, CARDS, CUSTOMERS):
        backends.catalog.register_table(table.info(bucket))
