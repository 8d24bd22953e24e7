"""One batch of customers -> their transaction rows (clean schema) and the matching ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from cdp.ibm.schema import TRANSACTIONS_SCHEMA
from cdp.synth.activity import CHANNEL_NAMES, ERROR_COMBOS, genuine_activity
from cdp.synth.attacks import Episode, attack_activity
from cdp.synth.card_blocks import reroute_blocked
from cdp.synth.clv import clv_expected, clv_realised
from cdp.synth.fraud_oracle import fraud_probability
from cdp.synth.label_calendar import label_recorded
from cdp.synth.mcc import catalogue
from cdp.synth.merchants import resolve_merchants
from cdp.synth.people import UserProfile, day_number
from cdp.synth.personas import PERSONAS
from cdp.synth.streams import Stream, user_rng

TRANSACTIONS_OUT_SCHEMA = pa.schema([f for f in TRANSACTIONS_SCHEMA if f.name != "line"])
TRUTH_TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("user", pa.int32()),
        ("card", pa.int8()),
        ("fraud_probability", pa.float64()),
        ("is_fraud_drawn", pa.bool_()),
        ("label_recorded", pa.bool_()),
        ("episode_id", pa.int64()),
        ("is_attack", pa.bool_()),
    ]
)
TRUTH_EPISODES_SCHEMA = pa.schema(
    [
        ("episode_id", pa.int64()),
        ("user", pa.int32()),
        ("card", pa.int8()),
        ("first_ts", pa.timestamp("s")),  # the episode's first row
        ("last_ts", pa.timestamp("s")),  # its last row (a reversal included)
        ("blocked_at", pa.timestamp("s")),  # the card is blocked: no row on it from here ...
        ("reissued_at", pa.timestamp("s")),  # ... until its new plastic (same card index) is in use
        ("rows", pa.int32()),
        ("frauds_drawn", pa.int32()),  # rows of the episode whose fraud label was drawn
        ("frauds_labelled", pa.int32()),  # ... and recorded (`Is Fraud?` = Yes)
    ]
)
TRUTH_USERS_SCHEMA = pa.schema(
    [
        ("user", pa.int32()),
        ("persona", pa.string()),
        ("clv_cutoff", pa.date32()),
        ("clv_expected", pa.float64()),
        ("clv_realised", pa.float64()),
    ]
)
_CHANNELS = pa.array(CHANNEL_NAMES)
_ERRORS = pa.array([list(c) for c in ERROR_COMBOS], pa.list_(pa.string()))


@dataclass(frozen=True)
class BatchSpec:
    """Everything a worker needs to generate a batch (picklable)."""

    seed: int
    end: date
    clv_cutoff: date
    unlabelled: tuple[tuple[int, int], ...]
    profiles: tuple[UserProfile, ...]


@dataclass
class BatchResult:
    transactions: pa.Table  # TRANSACTIONS_OUT_SCHEMA, file order
    truth: pa.Table  # TRUTH_TRANSACTIONS_SCHEMA with `line` relative to the batch (0-based)
    users: pa.Table  # TRUTH_USERS_SCHEMA
    episodes: pa.Table  # TRUTH_EPISODES_SCHEMA
    users_done: int


def _episode_rows(
    user: int, episodes: list[Episode], row_episode: np.ndarray, drawn: np.ndarray, recorded: np.ndarray
) -> list[dict]:
    ids = np.array([e.episode_id for e in episodes], dtype=np.int64)
    position = np.searchsorted(ids, row_episode)  # episode ids grow with time order within a user
    attack = row_episode >= 0

    def per_episode(flag: np.ndarray) -> np.ndarray:
        return np.bincount(position[attack & flag], minlength=len(ids))

    rows, frauds_drawn, frauds_labelled = (
        per_episode(np.ones(len(drawn), dtype=bool)),
        per_episode(drawn),
        per_episode(drawn & recorded),
    )
    return [
        {
            "episode_id": e.episode_id,
            "user": user,
            "card": e.card,
            "first_ts": e.first_ts,
            "last_ts": e.last_ts,
            "blocked_at": e.blocked_ts,
            "reissued_at": e.reissued_ts,
            "rows": int(rows[i]),
            "frauds_drawn": int(frauds_drawn[i]),
            "frauds_labelled": int(frauds_labelled[i]),
        }
        for i, e in enumerate(episodes)
    ]


def _user_tables(profile: UserProfile, spec: BatchSpec) -> tuple[pa.Table, pa.Table, dict, list[dict]]:
    end_day = day_number(spec.end)
    genuine = genuine_activity(profile, spec.seed, end_day)
    attacks = attack_activity(profile, spec.seed, end_day, genuine)
    genuine = reroute_blocked(
        genuine, profile, attacks.episodes, user_rng(spec.seed, profile.user, Stream.BLOCKS)
    )
    act = genuine.extended(attacks.activity).sorted_by_card_time()
    n = len(act)
    p = fraud_probability(act)
    drawn = user_rng(spec.seed, profile.user, Stream.LABELS).random(n) < p
    recorded = label_recorded(act.ts, list(spec.unlabelled))
    merchants = resolve_merchants(act)
    transactions = pa.table(
        {
            "user": pa.array(np.full(n, profile.user, dtype=np.int32)),
            "card": pa.array(act.card),
            "ts": pa.array(act.ts, pa.timestamp("s")),
            "amount_cents": pa.array(act.amount_cents),
            "channel": _CHANNELS.take(pa.array(act.channel)),
            "merchant_id": merchants.merchant_id,
            "merchant_city": merchants.city,
            "merchant_state": merchants.state,
            "zip": merchants.zip,
            "mcc": pa.array(catalogue().codes[act.mcc_index]),
            "errors": _ERRORS.take(pa.array(act.error_combo)),
            "is_fraud": pa.array(drawn & recorded),
        },
        schema=TRANSACTIONS_OUT_SCHEMA,
    )
    attack = act.episode >= 0
    truth = pa.table(
        {
            "line": pa.array(np.zeros(n, dtype=np.int64)),
            "user": pa.array(np.full(n, profile.user, dtype=np.int32)),
            "card": pa.array(act.card),
            "fraud_probability": pa.array(p),
            "is_fraud_drawn": pa.array(drawn),
            "label_recorded": pa.array(recorded),
            "episode_id": pa.array(act.episode, mask=~attack),
            "is_attack": pa.array(attack),
        },
        schema=TRUTH_TRANSACTIONS_SCHEMA,
    )
    user_truth = {
        "user": profile.user,
        "persona": PERSONAS[profile.persona].name,
        "clv_cutoff": spec.clv_cutoff,
        "clv_expected": clv_expected(profile, spec.clv_cutoff, spec.end),
        "clv_realised": clv_realised(act, spec.clv_cutoff, spec.end),
    }
    episodes = _episode_rows(profile.user, attacks.episodes, act.episode, drawn, recorded)
    return transactions, truth, user_truth, episodes


def generate_batch(spec: BatchSpec) -> BatchResult:
    """Transactions and ground truth of the batch's customers, in user order."""
    tx, truth, users, episodes = [], [], [], []
    for profile in spec.profiles:
        t, g, u, e = _user_tables(profile, spec)
        tx.append(t)
        truth.append(g)
        users.append(u)
        episodes.extend(e)
    truth_table = pa.concat_tables(truth)
    truth_table = truth_table.set_column(0, "line", pa.array(np.arange(truth_table.num_rows, dtype=np.int64)))
    return BatchResult(
        transactions=pa.concat_tables(tx).combine_chunks(),
        truth=truth_table.combine_chunks(),
        users=pa.Table.from_pylist(users, schema=TRUTH_USERS_SCHEMA),
        episodes=pa.Table.from_pylist(episodes, schema=TRUTH_EPISODES_SCHEMA),
        users_done=len(spec.profiles),
    )
