"""The customer (CLV / segmentation) as-of view: online state read as of a cut-off equals the offline SQL,
point-in-time and period edges are exact, and the three customer tables are built and registered."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cdp.backends import Backends
from cdp.lake.tables import TRANSACTIONS_LAKE_SCHEMA
from cdp.online.local import LocalOnlineStore
from features.asof_online import OnlineAsOfFeatures, load_customer_profiles
from features.customer import CUSTOMER_VIEW
from features.customer_tables import (
    TRAINING_MONTHS_BEFORE,
    build_customer_tables,
    compute_customer_features,
    months_before,
    validation_bucket,
)
from features.mcc import mcc_group
from features.model_inputs import SEGMENTATION_INPUTS
from features.sample import sample_cards, sample_customers, sample_transactions, write_sample_lake

CARDS, USERS = 300, 100
AS_OF = [date(2018, 9, 1), date(2019, 6, 1), date(2019, 6, 17)]


@pytest.fixture(scope="module")
def sample():
    tx = sample_transactions(12_000, CARDS, seed=21, days=700)
    # cards whose token ends in 7 go quiet in mid-2018, so users differ in active cards
    quiet = pc.and_(
        pc.equal(pc.utf8_slice_codeunits(tx["card_token"], 10, 11), "7"),
        pc.greater_equal(tx["ts"], pa.scalar(datetime(2018, 6, 1), tx["ts"].type)),
    )
    tx = tx.filter(pc.invert(quiet))
    return tx, sample_cards(CARDS, seed=21), sample_customers(USERS, seed=21)


@pytest.fixture
def lake(sample):
    backends = Backends()
    tx, cards, customers = sample
    write_sample_lake(backends, tx, cards, customers=customers)
    return backends


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (a is None and b is None) or (
            a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
        )
    return a == b and type(a) is type(b)


def test_online_state_read_as_of_each_cutoff_equals_the_offline_sql(lake, sample):
    tx, _, _ = sample
    offline = compute_customer_features(lake, AS_OF).to_pylist()
    by_cutoff: dict[datetime, dict[str, dict]] = {}
    for r in offline:
        by_cutoff.setdefault(r["as_of"], {})[r["user_token"]] = r
    assert [len(by_cutoff[datetime(d.year, d.month, d.day)]) for d in AS_OF] == [USERS] * 3

    online = OnlineAsOfFeatures(CUSTOMER_VIEW, LocalOnlineStore(), load_customer_profiles(lake.catalog))
    rows = sorted(tx.to_pylist(), key=lambda r: (r["ts"], r["event_seq"], r["txn_id"]))
    i, diffs = 0, []
    for day in AS_OF:
        cut = datetime(day.year, day.month, day.day)
        while i < len(rows) and rows[i]["ts"] < cut:
            online.update(rows[i])
            i += 1
        for user, row in by_cutoff[cut].items():
            got = online.features_as_of(user, cut)
            assert list(got) == CUSTOMER_VIEW.feature_names
            diffs += [
                (user, n, row[n], got[n]) for n in CUSTOMER_VIEW.feature_names if not _same(row[n], got[n])
            ]
    assert diffs == []
    # the features carry signal, and the profile join works (one customer in ten is unknown)
    rows_2019 = list(by_cutoff[datetime(2019, 6, 1)].values())
    sampled_groups = {mcc_group(m) for m in set(tx["mcc"].to_pylist())}
    for name in CUSTOMER_VIEW.feature_names:
        if name.startswith("spend_share_") and name[12:-5] not in sampled_groups:
            continue
        assert len({repr(r[name]) for r in offline}) > 1, name
    assert sum(r["fico_score"] is None for r in rows_2019) == USERS // 10


def test_state_survives_a_snapshot_of_the_online_store(lake, sample, tmp_path):
    tx, _, _ = sample
    cut = datetime(2019, 6, 1)
    rows = sorted((r for r in tx.to_pylist() if r["ts"] < cut), key=lambda r: (r["ts"], r["event_seq"]))
    profiles = load_customer_profiles(lake.catalog)
    first = OnlineAsOfFeatures(CUSTOMER_VIEW, LocalOnlineStore(tmp_path / "o.sqlite"), profiles)
    for r in rows[: len(rows) // 2]:
        first.update(r)
    first.flush()
    first.store.snapshot()
    restored = OnlineAsOfFeatures(CUSTOMER_VIEW, LocalOnlineStore(tmp_path / "o.sqlite"), profiles)
    fresh = OnlineAsOfFeatures(CUSTOMER_VIEW, LocalOnlineStore(), profiles)
    for r in rows[len(rows) // 2 :]:
        restored.update(r)
    for r in rows:
        fresh.update(r)
    for user in sorted({r["user_token"] for r in rows}):
        assert restored.features_as_of(user, cut) == fresh.features_as_of(user, cut)
    with pytest.raises(ValueError):
        fresh.features_as_of(rows[-1]["user_token"], rows[-1]["ts"])  # not after the last event


def _event(ts: datetime, line: int, amount: int, card: str = "crd_a", channel: str = "chip") -> dict:
    return {
        "txn_id": f"e-{line}", "user_token": "usr_edge", "card_token": card, "ts": ts,
        "amount_cents": amount, "channel": channel, "merchant_id": line, "merchant_city": "Austin",
        "merchant_state": "TX", "zip": "73301", "mcc": 5411, "errors": [], "is_fraud": False,
        "event_seq": line, "year": ts.year, "month": ts.month,
    }  # fmt: skip


def test_period_edges_and_cutoff_are_exact_on_both_paths():
    cut = datetime(2019, 6, 1)
    events = [
        _event(cut - timedelta(days=400), 1, 1_000),  # only in the whole history
        _event(cut - timedelta(days=365), 2, 2_000),  # exactly 365 days before: inside the 365-day period
        _event(cut - timedelta(days=180), 3, 4_000, card="crd_b"),  # first second of the 90 days before
        _event(cut - timedelta(days=90), 4, 8_000),  # exactly 90 days before: in the last 90, not before
        _event(cut - timedelta(days=30, seconds=1), 5, -500, channel="online"),  # refund, just out of 30d
        _event(cut - timedelta(days=30), 6, 16_000),  # exactly 30 days before: inside
        _event(cut, 7, 99_999),  # at the cut-off: not seen
    ]
    backends = Backends()
    write_sample_lake(backends, pa.Table.from_pylist(events, schema=TRANSACTIONS_LAKE_SCHEMA), None)
    offline = compute_customer_features(backends, [cut.date()]).to_pylist()
    online = OnlineAsOfFeatures(CUSTOMER_VIEW, LocalOnlineStore())
    for e in events[:-1]:
        online.update(e)
    for row in (offline[0], online.features_as_of("usr_edge", cut)):
        assert (row["purchases_30d"], row["net_spend_30d"]) == (1, 16_000)
        assert (row["purchases_90d"], row["net_spend_90d"]) == (2, 24_000 - 500)
        assert (row["purchases_365d"], row["transactions_ever"]) == (4, 6)
        assert row["net_spend_365d"] == 2_000 + 4_000 + 8_000 - 500 + 16_000
        assert row["spend_trend_90d"] == (24_000 - 500) / 4_000
        assert row["recency_days"] == 30.0 and row["tenure_days"] == 400.0
        assert row["mean_ticket_365d"] == 30_000 / 4
        assert row["refund_share_365d"] == row["channel_share_online_365d"] == 1 / 5
        assert (row["active_cards_90d"], row["active_cards_365d"]) == (1, 2)
        assert row["spend_share_grocery_365d"] == 1.0 and row["fico_score"] is None


def test_build_customer_tables_registers_features_clv_and_segmentation_sets(lake):
    cutoff = date(2019, 6, 1)
    summary = build_customer_tables(lake, cutoff)
    train_as_of = months_before(cutoff, 12)
    assert train_as_of == date(2018, 6, 1) and months_before(date(2020, 2, 29), 12) == date(2019, 2, 28)
    q = lake.catalog.query
    feats = q("SELECT as_of, count(*) AS n FROM customer_features GROUP BY as_of ORDER BY as_of").to_pylist()
    train_days = sorted(months_before(cutoff, m) for m in TRAINING_MONTHS_BEFORE)
    assert train_days[-1] == train_as_of
    present = [r["as_of"].date() for r in feats]  # as-of dates where some customer already had history
    assert set(present) <= {*train_days, cutoff} and {train_as_of, cutoff} <= set(present)
    counts = {r["as_of"].date(): r["n"] for r in feats}
    assert counts[train_as_of] == counts[cutoff] == USERS and all(n <= USERS for n in counts.values())

    clv = q("SELECT * FROM clv_training_set").to_pylist()
    assert list(clv[0])[:4] == ["user_token", "as_of", "split", "label"]
    assert list(clv[0])[-1] == "heuristic_last_12m"
    assert {r["split"] for r in clv if r["as_of"].date() == cutoff} == {"test"}
    assert {r["as_of"].date() for r in clv if r["split"] != "test"} == set(present) - {cutoff}
    for r in clv:
        if r["as_of"].date() in train_days:
            assert r["split"] == ("validation" if validation_bucket(r["user_token"]) else "train")
    assert summary["clv_training_set"]["rows_by_split"]["validation"] > 0
    # the label is the net spend of the next 12 months, recomputed here straight from the transactions
    user = clv[0]["user_token"]
    start = clv[0]["as_of"]
    expected = q(
        f"SELECT coalesce(sum(amount_cents), 0) AS s FROM transactions WHERE user_token = '{user}' "
        f"AND ts >= TIMESTAMP '{start}' AND ts < TIMESTAMP '{start}' + INTERVAL 12 MONTH"
    ).to_pylist()[0]["s"]
    before = q(
        f"SELECT coalesce(sum(amount_cents), 0) AS s FROM transactions WHERE user_token = '{user}' "
        f"AND ts < TIMESTAMP '{start}' AND ts >= TIMESTAMP '{start}' - INTERVAL 12 MONTH"
    ).to_pylist()[0]["s"]
    assert (clv[0]["label"], clv[0]["heuristic_last_12m"]) == (expected, before)
    assert clv[0]["label"] != clv[0]["heuristic_last_12m"]

    seg = q("SELECT * FROM segmentation_training_set").to_pylist()
    assert len(seg) == USERS and list(seg[0]) == ["user_token", *SEGMENTATION_INPUTS.inputs]
    # the protected attributes stay in customer_features: the models' tables never carry them
    assert not {"gender", "age_band_start"} & (set(seg[0]) | set(clv[0]))
    assert {"gender", "age_band_start"} <= set(q("SELECT * FROM customer_features LIMIT 1").column_names)
