"""`CardFeatures.features_pending` + `commit`: a batch's online features computed once, written later.

Checks against the two-pass path (`features(record=False)` to score, `features(record=True)` to record) on
the same events: the same feature rows, the same stored card states after the commit, nothing stored
before it; a stored state changed in between (another writer) or different rows make the commit decline
and `features(record=True)` compute afresh; `discard_pending` and an `EventOrderError` leave nothing.
"""

from __future__ import annotations

import random

import pytest

from cdp.online.local import LocalOnlineStore
from inference.card_features import CardFeatures, EventOrderError
from tests.test_inference_app import random_events, token


def events(seed: int, n: int) -> list[dict]:
    rng = random.Random(seed)
    cards = [token("crd_", rng) for _ in range(5)]
    return random_events(rng, cards, {c: token("usr_", rng) for c in cards}, n)


def stored(store: LocalOnlineStore) -> dict[str, bytes]:
    return store.get_many(store.keys())


def two_pass(batches: list[list[dict]]) -> tuple[list[list[dict]], dict[str, bytes]]:
    """Feature rows and final stored states of the batches through the two-pass path."""
    store = LocalOnlineStore(None)
    cards = CardFeatures(store)
    out = []
    for batch in batches:
        out.append(cards.features(batch, record=False))
        cards.features(batch, record=True)
    return out, stored(store)


def test_pending_batches_give_the_two_pass_features_and_states():
    rows = events(1, 300)
    batches = [rows[:120], rows[120:121], rows[121:]]
    want_features, want_states = two_pass(batches)
    store = LocalOnlineStore(None)
    cards = CardFeatures(store)
    for batch, want in zip(batches, want_features, strict=True):
        before = stored(store)
        got = cards.features_pending(batch)
        assert got == want
        assert stored(store) == before  # nothing written before the commit
        assert cards.features(batch, record=True) == want  # the commit path
        assert not cards.commit()  # consumed: nothing left pending
    assert stored(store) == want_states
    assert len([k for k in want_states if k.startswith("fraud_card#")]) == 5  # + 5 recorded-id sets


def test_commit_declines_when_a_card_state_changed_after_it_was_read():
    rows = events(2, 300)
    first, middle, second = rows[:100], rows[100:150], rows[150:]
    card = second[0]["card_token"]
    others = [r for r in middle if r["card_token"] == card][:3]  # events another writer records meanwhile
    assert others
    store = LocalOnlineStore(None)
    cards, other_writer = CardFeatures(store), CardFeatures(store)
    cards.features(first, record=True)
    pending = cards.features_pending(second)
    other_writer.features(others, record=True)  # the card's stored state moves on under the pending batch
    recorded = cards.features(second, record=True)  # the commit declines: computed afresh on that state
    assert not cards.commit()
    replay = LocalOnlineStore(None)
    sequential = CardFeatures(replay)
    for batch in (first, others, second):
        sequential.features(batch, record=True)
    assert stored(store) == stored(replay)  # every event counted once, none lost
    changed = [i for i, r in enumerate(second) if r["card_token"] == card]
    assert any(recorded[i] != pending[i] for i in changed)  # the pending rows lacked the other events
    assert all(recorded[i] == pending[i] for i in range(len(second)) if i not in changed)


def test_commit_needs_the_same_rows_and_discard_drops_the_batch():
    rows = events(3, 80)
    store = LocalOnlineStore(None)
    cards = CardFeatures(store)
    cards.features_pending(rows)
    assert not cards.commit(rows[:-1])  # not the pending rows: declined, and the batch is dropped
    assert not cards.commit() and stored(store) == {}
    cards.features_pending(rows)
    cards.discard_pending()
    assert not cards.commit(rows) and stored(store) == {}
    cards.features_pending([dict(r) for r in rows])  # equal rows (copies) are the same batch
    assert cards.commit(rows)
    assert stored(store) == two_pass([rows])[1]


def test_a_late_event_raises_and_leaves_nothing_pending():
    rows = events(4, 60)
    store = LocalOnlineStore(None)
    cards = CardFeatures(store)
    cards.features(rows[30:], record=True)
    before = stored(store)
    with pytest.raises(EventOrderError):
        cards.features_pending(rows[:30])
    assert not cards.commit() and stored(store) == before
    assert cards.features(rows[:30], record=False) == CardFeatures(store).features(rows[:30])


def test_a_replayed_txn_id_is_not_counted_twice():
    """Recording an event again (alone, or in a later batch with new events) changes nothing it counted;
    the new events of that batch still move the card (the replay does not make them late)."""
    rows = [r for r in events(5, 200) if r["card_token"] == events(5, 1)[0]["card_token"]]
    assert len(rows) >= 6
    store = LocalOnlineStore(None)
    cards = CardFeatures(store)
    cards.features(rows[:4], record=True)
    once = stored(store)
    replay = cards.features([rows[3]], record=True)  # the same txn_id again
    assert stored(store) == once
    assert replay == cards.features([rows[3]], record=False)  # scored as a what-if on the stored state
    cards.features([rows[1], rows[4], rows[4], rows[5]], record=True)  # old replay + new + repeat + new
    plain = LocalOnlineStore(None)
    CardFeatures(plain).features(rows[:6], record=True)
    assert stored(store) == stored(plain)  # every event counted exactly once
    pending = CardFeatures(store)
    pending.features_pending([rows[5]])
    assert pending.commit() and stored(store) == stored(plain)
