"""`generate`: write the three IBM-format files, the bank's contact list and the hidden ground truth.

Customers are drawn in the main process (Faker is only used there, for a few thousand rows); their
transactions are generated in batches by a process pool and streamed to the writers in user order, with at
most a few batches in flight, so memory stays flat at any scale. Every customer has their own random
streams, so the output is byte-identical whatever the number of workers.
"""

from __future__ import annotations

import csv
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.compute as pc

from cdp.ibm.schema import CARDS_FILE, TRANSACTIONS_FILE, USERS_FILE
from cdp.ibm.writer import TransactionsWriter, write_cards, write_users
from cdp.synth.fraud_oracle import COEFFICIENTS
from cdp.synth.ground_truth import GroundTruthWriter, write_manifest
from cdp.synth.label_calendar import unlabelled_months
from cdp.synth.mcc import catalogue
from cdp.synth.people import (
    UserProfile,
    UserRecord,
    assign_brands_and_types,
    cards_table,
    make_user,
    users_table,
)
from cdp.synth.personas import PERSONAS
from cdp.synth.reference import reference
from cdp.synth.user_batch import BatchResult, BatchSpec, generate_batch

GENERATOR_VERSION = "1.0.0"
USERS_PER_BATCH = 8
CONTACTS_FILE = Path("core_banking") / "contacts.csv"
GROUND_TRUTH_DIR = "ground_truth"


@dataclass(frozen=True)
class GenerationSummary:
    """What `generate` wrote."""

    out: Path
    users: int
    cards: int
    transactions: int
    fraud_labelled: int  # rows with `Is Fraud?` = Yes
    attack_rows: int
    seconds: float


def _warm_up() -> None:
    """Load the reference data once per worker process."""
    reference()
    catalogue()


def _batches(
    profiles: list[UserProfile], seed: int, end: date, clv_cutoff: date, unlabelled: list[tuple[int, int]]
) -> Iterator[BatchSpec]:
    for i in range(0, len(profiles), USERS_PER_BATCH):
        yield BatchSpec(seed, end, clv_cutoff, tuple(unlabelled), tuple(profiles[i : i + USERS_PER_BATCH]))


def _results_in_order(specs: Iterator[BatchSpec], workers: int) -> Iterator[BatchResult]:
    """Batch results in submission order; in parallel with a bounded number in flight."""
    if workers <= 1:
        yield from map(generate_batch, specs)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_warm_up) as pool:
        pending: deque[Future[BatchResult]] = deque()
        for spec in specs:
            pending.append(pool.submit(generate_batch, spec))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _write_contacts(path: Path, records: list[UserRecord]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["User", "Email"])
        for r in records:
            writer.writerow([r.user_row["user"], r.email])


def generate(
    out: Path,
    users: int,
    seed: int = 7,
    start: date = date(1991, 1, 1),
    end: date = date(2020, 2, 28),
    clv_cutoff: date = date(2019, 3, 1),
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """Write IBM-format users, cards and transactions files plus contacts and ground truth into `out`."""
    if users < 1:
        raise ValueError("users must be at least 1")
    if not start < clv_cutoff < end:
        raise ValueError("dates must satisfy start < clv_cutoff < end")
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _warm_up()
    drawn = [make_user(seed, u, start, clv_cutoff, end) for u in range(users)]
    profiles = [p for p, _ in drawn]
    records = [r for _, r in drawn]
    assign_brands_and_types(records, seed)
    write_users(users_table(records), out / USERS_FILE)
    n_cards = write_cards(cards_table(records), out / CARDS_FILE)
    _write_contacts(out / CONTACTS_FILE, records)
    del drawn, records

    unlabelled = unlabelled_months(seed, start, end)
    done = fraud_labelled = fraud_drawn = attack_rows = episodes = 0
    truth_dir = out / GROUND_TRUTH_DIR
    with TransactionsWriter(out / TRANSACTIONS_FILE) as tx_writer, GroundTruthWriter(truth_dir) as truth:
        for result in _results_in_order(_batches(profiles, seed, end, clv_cutoff, unlabelled), workers):
            first_line = tx_writer.rows_written + 2  # header is line 1
            tx_writer.write(result.transactions)
            truth.write(result.truth, result.users, first_line, result.episodes)
            fraud_labelled += pc.sum(result.transactions.column("is_fraud")).as_py() or 0
            fraud_drawn += pc.sum(result.truth.column("is_fraud_drawn")).as_py() or 0
            attack_rows += pc.sum(result.truth.column("is_attack")).as_py() or 0
            episodes += result.episodes.num_rows
            done += result.users_done
            if progress is not None:
                progress(done, users)
        n_transactions = tx_writer.rows_written

    write_manifest(
        truth_dir,
        {
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "users": users,
            "start": start,
            "end": end,
            "clv_cutoff": clv_cutoff,
            "rows": {
                "users": users,
                "cards": n_cards,
                "transactions": n_transactions,
                "fraud_labelled": fraud_labelled,
                "fraud_drawn": fraud_drawn,
                "attack_rows": attack_rows,
                "attack_episodes": episodes,
            },
            "personas": [{"name": p.name, "share": p.share} for p in PERSONAS],
            "fraud_score": {
                "model": "logistic: p = 1 / (1 + exp(-(intercept + sum(coefficient * feature))))",
                "coefficients": COEFFICIENTS,
                "features_from": "the transaction and the same card's earlier transactions only",
            },
            "episodes": (
                "a burst of attack rows on one card (episode_id in the transactions truth); the card is "
                "blocked after the last row and in use again with a new plastic (same card index) at "
                "reissued_at, with no row on it in between"
            ),
            "card_life": "every row falls in its card's Acct Open Date .. Expires months",
            "unlabelled_months": [f"{y:04d}-{m:02d}" for y, m in unlabelled],
            "clv": "net genuine spend (refunds included, attack rows excluded) in [clv_cutoff, +12 months)",
            "files": [USERS_FILE, CARDS_FILE, TRANSACTIONS_FILE, str(CONTACTS_FILE)],
        },
    )
    return GenerationSummary(
        out=out,
        users=users,
        cards=n_cards,
        transactions=n_transactions,
        fraud_labelled=fraud_labelled,
        attack_rows=attack_rows,
        seconds=time.perf_counter() - t0,
    )
