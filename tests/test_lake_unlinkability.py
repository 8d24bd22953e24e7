"""Attacks on a generated lake that worked on the former layout (the lake kept each row's source line, and
the IBM file is ordered by user): the order of a customer's first row gave their user id away, 100%.

Now the lake orders a card's rows by `event_seq` (line + a keyed per-card offset) and `txn_id` ends with
it: the order within a card is kept, the source order across cards is not. After erasure the customer's
tokens cannot be made again, and batch and stream quarantine their rows as "erased".
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scipy.stats import spearmanr

from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.corebanking.erasure import forget_customer
from cdp.corebanking.load import load_core_banking
from cdp.ibm.quarantine import QuarantineRecorder, read_quarantine
from cdp.ibm.reader import iter_transactions
from cdp.ibm.schema import TRANSACTIONS_FILE
from cdp.lake.transactions import protect_transactions_for_lake
from cdp.security.errors import CustomerErased
from cdp.security.vault import Caller
from cdp.settings import Settings
from cdp.streaming import records
from cdp.streaming.lake_sink import consume
from cdp.streaming.produce import produce, read_erased_quarantine
from cdp.synth.generator import generate

USERS = 30


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=USERS, seed=5, start=date(2018, 1, 1), workers=1)
    return out


@pytest.fixture(scope="module")
def clean(source) -> pa.Table:
    """The source's accepted transactions (with their user ids and lines: what the attacker wants)."""
    return pa.concat_tables(iter_transactions(source / TRANSACTIONS_FILE, QuarantineRecorder()))


@pytest.fixture(scope="module")
def lake(source, tmp_path_factory) -> Backends:
    b = Backends(Settings(home=tmp_path_factory.mktemp("home"), workers=2))
    run_batch(source, b, chunk_bytes=1 << 20)
    return b


def _user_of_token(b: Backends) -> dict[str, int]:
    return {b.protector.user_token(u): u for u in range(USERS)}


def test_the_order_of_customers_first_rows_does_not_give_their_ids_away(lake, clean):
    # The attack works on source lines (the file is ordered by user): the rank of a user's first line is
    # their id, for every user.
    first_line = clean.group_by("user").aggregate([("line", "min")]).sort_by("line_min")
    assert first_line["user"].to_pylist() == sorted(first_line["user"].to_pylist())
    # On the lake: the rank of each token's first event_seq (and of its first txn_id number).
    owner = _user_of_token(lake)
    rows = lake.catalog.query(
        "SELECT user_token, min(event_seq) AS first_seq, "
        "min(CAST(split_part(txn_id, '-', 2) AS BIGINT)) AS first_id FROM transactions GROUP BY user_token"
    ).to_pylist()
    assert len(rows) >= 20
    truth = np.array([owner[r["user_token"]] for r in rows])
    for column in ("first_seq", "first_id"):
        order = np.argsort([r[column] for r in rows], kind="stable")
        guessed_rank = np.empty(len(rows), dtype=int)
        guessed_rank[order] = np.arange(len(rows))
        true_rank = np.argsort(np.argsort(truth))
        rho = spearmanr(guessed_rank, true_rank).statistic
        assert abs(rho) < 0.7, (column, rho)  # 1.0 on the former lake; |rho| >= 0.7 by chance: p < 2e-4
        assert int((guessed_rank == true_rank).sum()) <= 6  # chance: one match expected (Poisson, 1)


def test_no_lake_column_is_the_source_line_and_txn_ids_do_not_end_with_it(lake, clean):
    got = protect_transactions_for_lake(lake.protector, clean)  # the batch's rows (tested equal elsewhere)
    lines = clean["line"]
    for name in got.column_names:
        if pa.types.is_integer(got.schema.field(name).type):
            same = pc.sum(pc.equal(pc.cast(got[name], pa.int64()), lines)).as_py() or 0
            assert same < got.num_rows / 100, name
    suffix = pc.cast(pc.utf8_slice_codeunits(got["txn_id"], 27), pa.int64())
    assert (pc.sum(pc.equal(suffix, lines)).as_py() or 0) == 0
    assert suffix.equals(got["event_seq"])
    stored = lake.catalog.query("SELECT * FROM transactions LIMIT 1").schema.names
    assert not {"line", "source_line", "user", "card", "user_id"} & set(stored)
    assert not {"line", "source_line", "user", "card"} & set(records.RECORD_FIELDS)


def test_event_seq_grows_with_the_source_line_within_a_card(lake, clean):
    got = protect_transactions_for_lake(lake.protector, clean)
    by_card: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for card, line, seq in zip(
        got["card_token"].to_pylist(), clean["line"].to_pylist(), got["event_seq"].to_pylist(), strict=True
    ):
        by_card[card].append((line, seq))
    assert len(by_card) > USERS
    offsets = set()
    for pairs in by_card.values():
        pairs.sort()
        seqs = [s for _, s in pairs]
        assert all(a < b for a, b in zip(seqs, seqs[1:], strict=False))  # strictly increasing with line
        assert len({s - line for line, s in pairs}) == 1  # one offset per card
        offsets.add(pairs[0][1] - pairs[0][0])
        assert 0 <= seqs[0] and seqs[-1] < 2**31
    assert len(offsets) == len(by_card)


def test_stream_rows_equal_batch_rows_and_carry_no_line(lake, source, clean):
    sent = produce(source, lake)
    consume(lake)
    assert sent.sent > 0 and sent.erased == 0
    want = protect_transactions_for_lake(lake.protector, clean)  # every row: the batch's and the stream's
    got = lake.catalog.query("SELECT * FROM transactions ORDER BY txn_id")
    want = want.sort_by("txn_id").select(got.schema.names).cast(got.schema)
    assert got.num_rows == want.num_rows and got.equals(want)


def test_after_erasure_the_token_is_gone_and_batch_and_stream_quarantine_the_rows(source, clean, tmp_path):
    b = Backends(Settings(home=tmp_path / "home", workers=1))
    load_core_banking(source, b)
    run_batch(source, b)
    owner = _user_of_token(b)
    victim = 4
    token = b.protector.user_token(victim)
    where = f"user_token = '{token}'"
    assert b.catalog.query(f"SELECT count(*) AS n FROM transactions WHERE {where}")["n"][0].as_py() > 0
    forget_customer(victim, Caller("dpo-1", "privacy-officer"), b)
    fresh = Backends(Settings(home=tmp_path / "home", workers=1))  # another process, with every key
    with pytest.raises(CustomerErased):
        fresh.protector.user_token(victim)
    assert token not in {fresh.protector.user_token(u) for u in range(USERS) if u != victim}
    assert set(owner) - {token} == {fresh.protector.user_token(u) for u in range(USERS) if u != victim}

    report = run_batch(source, fresh)
    victim_rows = pc.sum(pc.equal(clean["user"], victim)).as_py()
    quarantine = read_quarantine(fresh.settings.quarantine_dir).to_pylist()
    erased = [r for r in quarantine if r["reason"] == "erased"]
    assert sum(r["file"] == TRANSACTIONS_FILE for r in erased) == victim_rows
    assert {r["file"] for r in erased} == {TRANSACTIONS_FILE, "sd254_users.csv", "sd254_cards.csv"}
    assert all(r["raw"] is None for r in erased)
    victim_lines = set(pc.filter(clean["line"], pc.equal(clean["user"], victim)).to_pylist())
    assert {r["line"] for r in erased if r["file"] == TRANSACTIONS_FILE} == victim_lines
    for stats in report.files.values():
        assert stats["rows_read"] == stats["rows_accepted"] + stats["rows_quarantined"]
    assert report.files[TRANSACTIONS_FILE]["rows_quarantined"] >= victim_rows
    for table in ("customers", "cards", "transactions"):
        n = fresh.catalog.query(f"SELECT count(*) AS n FROM {table} WHERE user_token = '{token}'")
        assert n["n"][0].as_py() == 0

    stream = produce(source, fresh)
    cutoff = report.split.cutoff
    in_stream = pc.and_(pc.equal(clean["user"], victim), pc.greater_equal(clean["ts"], pa.scalar(cutoff)))
    assert stream.erased == pc.sum(in_stream).as_py() > 0
    stream_quarantine = read_erased_quarantine(fresh)
    assert set(stream_quarantine["reason"].to_pylist()) == {"erased"}
    assert stream_quarantine.num_rows == stream.erased
