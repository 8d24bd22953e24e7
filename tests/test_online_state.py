"""The online state's compiled update and stored form: inline columns equal their Python definitions, old
stored states still load, the stored form is deterministic, and the read helpers agree with the state."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from cdp.online.local import LocalOnlineStore
from features.columns import COLUMNS
from features.fraud import FRAUD_VIEW
from features.online import CardProfile, OnlineFeatures
from features.online_compile import INLINE_COLUMNS, INLINE_SCOPE
from features.sample import sample_cards, sample_transactions

CARDS = 60


@pytest.fixture(scope="module")
def rows():
    tx = sample_transactions(3_000, CARDS, seed=21)
    return sorted(tx.to_pylist(), key=lambda r: (r["ts"], r["event_seq"], r["txn_id"]))


@pytest.fixture(scope="module")
def profiles():
    return {r["card_token"]: CardProfile.from_row(r) for r in sample_cards(CARDS, seed=21).to_pylist()}


def edge_rows(base):
    """Rows with every nullable or special field value the columns branch on."""
    edits = [
        {"errors": None}, {"errors": []}, {"errors": ["Bad PIN"]}, {"errors": ["Technical Glitch"]},
        {"errors": ["Insufficient Balance", "Bad CVV"]}, {"mcc": None}, {"mcc": 5944}, {"mcc": 12_000},
        {"merchant_state": None}, {"merchant_state": "Italy"}, {"merchant_state": "CA"},
        {"channel": "online", "merchant_city": "ONLINE"}, {"merchant_city": None}, {"channel": "chip"},
        {"amount_cents": 0}, {"amount_cents": -125}, {"amount_cents": 9_999},
    ]  # fmt: skip
    return [base | e for e in edits]


def test_every_inline_column_equals_its_python_definition(rows):
    assert INLINE_COLUMNS and set(INLINE_COLUMNS) <= set(COLUMNS)
    every = rows + edge_rows(rows[0])
    for name, expr in INLINE_COLUMNS.items():
        inline = eval(f"lambda row: {expr}", dict(INLINE_SCOPE))  # noqa: S307 - the module's own source
        for row in every:
            want, got = COLUMNS[name].value(row), inline(row)
            assert got == want and type(got) is type(want), (name, row["txn_id"])
        assert len({repr(COLUMNS[name].value(r)) for r in every}) > 1, name  # the rows exercise it


def replay(rows, profiles, store, restart_every=None):
    """Features of every row; with `restart_every`, the state is written, dropped and read back (decoded
    from the store by a new instance) every that many rows."""
    online = OnlineFeatures(FRAUD_VIEW, store, profiles)
    out = []
    for i, r in enumerate(rows):
        if restart_every and i and i % restart_every == 0:
            online.flush()
            online = OnlineFeatures(FRAUD_VIEW, store, profiles)
        out.append(online.update(r))
    online.flush()
    return out


def test_the_stored_state_is_the_same_whether_or_not_it_was_restored_on_the_way(rows, profiles):
    straight, restored = LocalOnlineStore(), LocalOnlineStore()
    assert replay(rows, profiles, straight) == replay(rows, profiles, restored, restart_every=97)
    keys = straight.keys()
    assert len(keys) == CARDS and straight.get_many(keys) == restored.get_many(keys)


def test_states_stored_in_the_sorted_form_load_and_continue_the_same(rows, profiles):
    """States written before first-seen values were kept in first-seen order held them sorted by repr."""
    half = len(rows) // 2
    current = LocalOnlineStore()
    replay(rows[:half], profiles, current)
    old = LocalOnlineStore()
    for key, blob in current.get_many(current.keys()).items():
        doc = json.loads(blob)
        doc["s"] = {c: sorted(v, key=repr) for c, v in doc["s"].items()}
        doc["r"] = {c: sorted(v, key=repr) for c, v in doc["r"].items()}
        old.put_many({key: json.dumps(doc, separators=(",", ":")).encode()})
    assert old.get_many(old.keys()) != current.get_many(current.keys())  # the forms really differ
    assert replay(rows[half:], profiles, old) == replay(rows[half:], profiles, current)


def test_last_event_epoch_and_the_summary_counts_match_the_state(rows, profiles):
    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(), profiles)
    last = {}
    for r in rows:
        online.update(r)
        last[r["card_token"]] = r["ts"]
    assert online.last_event_epoch("crd_never_seen") is None
    for key, ts in last.items():
        epoch = online.last_event_epoch(key)
        assert epoch == int((ts - datetime(1970, 1, 1)).total_seconds())
        summary = online.state_summary(key)
        assert summary["last_event_epoch_s"] == epoch
        times = online._states[key].times
        for name, w in zip(online.plan.window_names, online.plan.windows, strict=True):
            want = sum(1 for t in times if t >= epoch - w.seconds)
            assert summary[f"events_in_last_{name}"] == want
    assert max(online.state_summary(k)["events_in_last_30d"] for k in last) > 1


def test_a_parked_state_answers_like_a_decoded_one_even_for_events_older_than_the_last(rows, profiles):
    """What-if events older than a card's last event (never recorded) see the same state whether it was
    parked by this instance or decoded by a new one."""
    store = LocalOnlineStore()
    half = len(rows) // 2
    cached = OnlineFeatures(FRAUD_VIEW, store, profiles)
    keys = sorted({r["card_token"] for r in rows})
    cached.prepare(keys)
    for r in rows[half:]:
        cached.update(r)
    cached.flush()
    cached.forget(keys)
    assert len(cached._parked) == len(keys)
    cached.prepare(keys)
    assert not cached._parked  # every state came back from the parked set
    fresh = OnlineFeatures(FRAUD_VIEW, store, profiles)
    assert [cached.update(r) for r in rows[:half]] == [fresh.update(r) for r in rows[:half]]


def test_the_blob_written_after_every_batch_is_the_plain_json_of_the_state(rows, profiles):
    """The first-seen values' JSON is reused between writes while no new value is seen: every blob written
    must still be exactly the JSON of the whole state (new merchants included as they appear)."""
    store = LocalOnlineStore()
    online = OnlineFeatures(FRAUD_VIEW, store, profiles)
    grew = 0
    for start in range(0, len(rows), 50):
        batch = rows[start : start + 50]
        keys = {r["card_token"] for r in batch}
        seen_before = {k: sum(map(len, online._states[k].seen.values())) for k in keys if k in online._states}
        for r in batch:
            online.update(r)
        online.flush()
        for k in keys:
            st = online._states[k]
            grew += sum(map(len, st.seen.values())) > seen_before.get(k, 0)
            blob = store.get_many([f"{FRAUD_VIEW.name}#{k}"])[f"{FRAUD_VIEW.name}#{k}"]
            keep = online._first_kept(st)
            plain = {
                "t": st.times[keep:], "v": [c[keep:] for c in st.vals], "h": st.hist, "p": st.prev,
                "s": {c: list(v) for c, v in st.seen.items()},
                "r": {c: [[x, n] for x, n in v.items()] for c, v in st.share.items()},
            }  # fmt: skip
            assert blob == json.dumps(plain, separators=(",", ":")).encode()
    assert grew > 0  # new first-seen values appeared between writes of a state
