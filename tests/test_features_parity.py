"""Parity: replaying events through the online path gives every event the features the offline SQL gives
its row (exact for counts, flags and integers; <= 1e-9 relative for means, shares and z-scores)."""

from __future__ import annotations

import math

import duckdb
import pytest

from cdp.backends import Backends
from cdp.online.local import LocalOnlineStore
from features.fraud import FRAUD_VIEW
from features.offline import compute_view
from features.online import OnlineFeatures, load_card_profiles
from features.sample import sample_cards, sample_transactions, write_sample_lake

EVENTS, CARDS = 6_000, 400


@pytest.fixture(scope="module")
def sample():
    return sample_transactions(EVENTS, CARDS, seed=11), sample_cards(CARDS, seed=11)


@pytest.fixture
def lake(sample):
    backends = Backends()
    tx, cards = sample
    write_sample_lake(backends, tx, cards)
    return backends


def event_order(rows):
    return sorted(rows, key=lambda r: (r["ts"], r["event_seq"], r["txn_id"]))


def mismatches(offline_rows, online_by_txn, names):
    """(txn_id, feature, offline, online) for every value that differs."""
    out = []
    for row in offline_rows:
        got = online_by_txn[row["txn_id"]]
        for name in names:
            a, b = row[name], got[name]
            if isinstance(a, float) or isinstance(b, float):
                same = a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
                same = same or (a is None and b is None)
            else:
                same = a == b and type(a) is type(b)
            if not same:
                out.append((row["txn_id"], name, a, b))
    return out


def test_the_sample_exercises_ties_window_edges_and_every_kind_of_row(sample):
    tx, _ = sample
    con = duckdb.connect()
    con.register("tx", tx)
    gaps = dict(
        con.execute(
            "SELECT gap, count(*) FROM (SELECT epoch(ts) - lag(epoch(ts)) OVER "
            "(PARTITION BY card_token ORDER BY ts, event_seq) AS gap FROM tx) GROUP BY gap"
        ).fetchall()
    )
    for edge in (0, 3_600, 86_400, 7 * 86_400, 30 * 86_400):
        assert gaps.get(edge, 0) >= 5, edge
    kinds = con.execute(
        "SELECT count(*) FILTER (WHERE amount_cents < 0), count(*) FILTER (WHERE channel = 'online'), "
        "count(*) FILTER (WHERE length(merchant_state) > 2), count(*) FILTER (WHERE len(errors) > 0), "
        "count(DISTINCT card_token) FROM tx"
    ).fetchone()
    assert min(kinds[:4]) >= 50 and kinds[4] >= 300


def test_online_replay_equals_offline_sql_for_every_event_and_feature(lake, sample):
    tx, _ = sample
    offline = compute_view(lake.catalog, FRAUD_VIEW.name).to_pylist()
    assert len(offline) == EVENTS

    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(), load_card_profiles(lake.catalog))
    by_txn = {r["txn_id"]: online.update(r) for r in event_order(tx.to_pylist())}

    assert list(next(iter(by_txn.values()))) == FRAUD_VIEW.feature_names
    assert mismatches(offline, by_txn, FRAUD_VIEW.feature_names) == []
    # the features carry signal: no feature is constant over the sample
    for name in FRAUD_VIEW.feature_names:
        assert len({repr(r[name]) for r in offline}) > 1, name


def test_parity_holds_across_a_snapshot_and_restore_of_the_online_store(lake, sample, tmp_path):
    tx, _ = sample
    offline = compute_view(lake.catalog, FRAUD_VIEW.name).to_pylist()
    rows = event_order(tx.to_pylist())
    half = len(rows) // 2
    profiles = load_card_profiles(lake.catalog)

    store = LocalOnlineStore(tmp_path / "online.sqlite")
    first = OnlineFeatures(FRAUD_VIEW, store, profiles)
    by_txn = {r["txn_id"]: first.update(r) for r in rows[:half]}
    assert first.flush() > 0 and store.snapshot() > 0

    restored = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(tmp_path / "online.sqlite"), profiles)
    restored.prepare({r["card_token"] for r in rows[half:]})
    by_txn |= {r["txn_id"]: restored.update(r) for r in rows[half:]}
    assert mismatches(offline, by_txn, FRAUD_VIEW.feature_names) == []


def test_syncing_the_online_store_from_the_lake_continues_exactly_like_the_offline_sql(lake, sample):
    """State built from the lake's history up to T, then live events from T on, gives every event after T
    the offline features; re-running the sync does not count history twice."""
    from features.online_sync import sync_online_state

    offline = compute_view(lake.catalog, FRAUD_VIEW.name).to_pylist()
    ordered = event_order(offline)
    cut = ordered[len(ordered) * 2 // 3]["ts"]
    for _ in range(2):
        summary = sync_online_state(lake, until=cut)
    assert summary["events"] == sum(1 for r in offline if r["ts"] < cut)
    tx, _ = sample
    live = event_order([r for r in tx.to_pylist() if r["ts"] >= cut])
    online = OnlineFeatures(FRAUD_VIEW, lake.online_store, load_card_profiles(lake.catalog))
    got = {r["txn_id"]: online.update(r) for r in live}
    later = [r for r in offline if r["ts"] >= cut]
    assert later and mismatches(later, got, FRAUD_VIEW.feature_names) == []
    # without the sync every card's first live event would look new: the sync is what makes it right
    fresh = OnlineFeatures(FRAUD_VIEW, type(lake.online_store)(None), load_card_profiles(lake.catalog))
    cold = {r["txn_id"]: fresh.update(r) for r in live}
    assert mismatches(later, cold, FRAUD_VIEW.feature_names)


def replay_in_batches(instances, rows, batch, store):
    """Replay `rows` batch by batch the way the stream does (prepare, update, flush, snapshot, forget),
    the batches taken in turn by `instances` (several instances share one store)."""
    by_txn = {}
    for n, i in enumerate(range(0, len(rows), batch)):
        online = instances[n % len(instances)]
        part = rows[i : i + batch]
        keys = sorted({r["card_token"] for r in part})
        online.forget(keys)
        online.prepare(keys)
        by_txn |= {r["txn_id"]: online.update(r) for r in part}
        online.flush()
        store.snapshot()
        online.forget(keys)
    return by_txn


def counting_decodes(monkeypatch):
    calls = []
    original = OnlineFeatures._decode

    def decode(self, blob):
        calls.append(blob)
        return original(self, blob)

    monkeypatch.setattr(OnlineFeatures, "_decode", decode)
    return calls


def test_parked_states_are_reused_across_batches_and_parity_holds(lake, sample, tmp_path, monkeypatch):
    tx, _ = sample
    offline = compute_view(lake.catalog, FRAUD_VIEW.name).to_pylist()
    rows = event_order(tx.to_pylist())
    decodes = counting_decodes(monkeypatch)
    store = LocalOnlineStore(tmp_path / "online.sqlite")
    online = OnlineFeatures(FRAUD_VIEW, store, load_card_profiles(lake.catalog))
    by_txn = replay_in_batches([online], rows, 250, store)
    assert mismatches(offline, by_txn, FRAUD_VIEW.feature_names) == []
    assert decodes == []  # every state came back from the parked set, none was decoded
    assert len(online._parked) == CARDS

    # a bounded parked set: states beyond the bound are decoded again, with the same features
    decodes.clear()
    bounded = OnlineFeatures(
        FRAUD_VIEW, LocalOnlineStore(), load_card_profiles(lake.catalog), parked_limit=50
    )
    by_txn = replay_in_batches([bounded], rows, 250, bounded.store)
    assert mismatches(offline, by_txn, FRAUD_VIEW.feature_names) == []
    assert len(bounded._parked) == 50 and decodes


def test_a_parked_state_is_not_reused_once_another_writer_changed_the_stored_state(lake, sample, monkeypatch):
    """Two instances on one store take the batches in turn: each one's parked states go stale when the
    other writes the card, and must then be read from the store for the features to stay right."""
    tx, _ = sample
    offline = compute_view(lake.catalog, FRAUD_VIEW.name).to_pylist()
    rows = event_order(tx.to_pylist())
    decodes = counting_decodes(monkeypatch)
    store = LocalOnlineStore()
    profiles = load_card_profiles(lake.catalog)
    pair = [OnlineFeatures(FRAUD_VIEW, store, profiles), OnlineFeatures(FRAUD_VIEW, store, profiles)]
    by_txn = replay_in_batches(pair, rows, 300, store)
    assert mismatches(offline, by_txn, FRAUD_VIEW.feature_names) == []
    assert decodes  # stale parked states were decoded afresh


def test_updates_not_written_are_never_parked(lake, sample):
    """A what-if pass (update, then forget without a flush) leaves the next pass reading the stored state."""
    tx, _ = sample
    offline = compute_view(lake.catalog, FRAUD_VIEW.name).to_pylist()
    rows = event_order(tx.to_pylist())
    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(), load_card_profiles(lake.catalog))
    by_txn = {}
    for i in range(0, len(rows), 500):
        part = rows[i : i + 500]
        keys = sorted({r["card_token"] for r in part})
        online.prepare(keys)
        for r in part:
            online.update(r)
        online.forget(keys)  # thrown away: nothing written, nothing parked
        online.prepare(keys)
        by_txn |= {r["txn_id"]: online.update(r) for r in part}
        online.flush()
        online.forget(keys)
    assert mismatches(offline, by_txn, FRAUD_VIEW.feature_names) == []


def test_parity_on_long_card_histories_where_the_state_is_trimmed():
    """A few cards with years of events: the state lists are trimmed (evicted events dropped, window and
    maximum indexes shifted) many times, and every event still gets the offline features."""
    tx, cards = sample_transactions(4_000, 3, seed=5, days=365 * 6), sample_cards(3, seed=5)
    backends = Backends()
    write_sample_lake(backends, tx, cards)
    offline = compute_view(backends.catalog, FRAUD_VIEW.name).to_pylist()
    rows = event_order(tx.to_pylist())
    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(), load_card_profiles(backends.catalog))
    by_txn = {r["txn_id"]: online.update(r) for r in rows}
    assert mismatches(offline, by_txn, FRAUD_VIEW.feature_names) == []
    per_card = {k: sum(1 for r in rows if r["card_token"] == k) for k in online._states}
    assert all(len(online._states[k].times) < n - 512 for k, n in per_card.items())  # trimmed
