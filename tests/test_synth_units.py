"""Unit tests of the generator's building blocks (no files written)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from cdp.synth.activity import ERROR_COMBOS, ONLINE, SWIPE, Activity, Place, genuine_activity
from cdp.synth.clv import clv_expected, clv_window
from cdp.synth.fraud_oracle import COEFFICIENTS, FEATURES, fraud_probability, observable_features
from cdp.synth.label_calendar import label_recorded, unlabelled_months
from cdp.synth.luhn import is_luhn_valid, luhn_check_digit
from cdp.synth.mcc import GROUP_NAMES, catalogue
from cdp.synth.merchants import merchant_id
from cdp.synth.people import _quota, day_number, make_user
from cdp.synth.personas import PERSONAS

START, END, CUTOFF = date(1991, 1, 1), date(2020, 2, 28), date(2019, 3, 1)


def test_luhn_known_numbers():
    assert is_luhn_valid("4111111111111111")
    assert is_luhn_valid("378282246310005")  # a published Amex test number
    assert not is_luhn_valid("4111111111111112")
    assert luhn_check_digit("411111111111111") == "1"


def test_merchant_id_is_stable_signed_64_bit():
    a, b = merchant_id("Rome|Italy|5812|0"), merchant_id("Rome|Italy|5812|1")
    assert a == merchant_id("Rome|Italy|5812|0")
    assert a != b
    assert all(-(2**63) <= v < 2**63 for v in (a, b))


def test_catalogue_has_real_codes_and_groups():
    cat = catalogue()
    assert len(set(cat.codes.tolist())) == len(cat.codes) >= 109
    assert all(d for d in cat.descriptions)
    for g in range(len(GROUP_NAMES)):
        assert cat.within_group_weight[cat.group == g].sum() == pytest.approx(1.0)


def test_personas_differ_in_behaviour():
    mixes = np.array([p.group_weights() for p in PERSONAS])
    # every pair of personas differs clearly in spending mix (total variation distance)
    for i in range(len(PERSONAS)):
        for j in range(i + 1, len(PERSONAS)):
            assert 0.5 * np.abs(mixes[i] - mixes[j]).sum() > 0.15
    assert len({p.hour_probabilities().argmax() for p in PERSONAS}) >= 3


def test_quota_matches_shares_exactly():
    counts = _quota(1000, np.array([0.522, 0.378, 0.065, 0.035]))
    assert counts.sum() == 1000
    assert counts.tolist() == [522, 378, 65, 35]


def test_unlabelled_months_include_the_last_four_and_are_deterministic():
    months = unlabelled_months(7, START, END)
    assert {(2019, 11), (2019, 12), (2020, 1), (2020, 2)} <= set(months)
    assert len(months) == 12
    assert months == unlabelled_months(7, START, END)
    assert months != unlabelled_months(8, START, END)
    ts = np.array([day_number(date(2019, 12, 5)) * 86400, day_number(date(2019, 10, 5)) * 86400 + 5])
    assert label_recorded(ts, [(2019, 12)]).tolist() == [False, True]
    assert unlabelled_months(7, date(2010, 1, 1), date(2019, 12, 31))[-2:] == [(2019, 11), (2019, 12)]


def _activity(ts: list[int], amounts: list[int], places: list[int], channel: list[int]) -> Activity:
    n = len(ts)
    return Activity(
        card=np.zeros(n, dtype=np.int8),
        ts=np.array(ts, dtype=np.int64),
        amount_cents=np.array(amounts, dtype=np.int64),
        channel=np.array(channel, dtype=np.int8),
        mcc_index=np.zeros(n, dtype=np.int16),
        place=np.array(places, dtype=np.int32),
        rank=np.zeros(n, dtype=np.int16),
        error_combo=np.zeros(n, dtype=np.int16),
        episode=np.full(n, -1, dtype=np.int64),
        places=[
            Place("ONLINE", None),
            Place("Austin", "TX", ("78701",)),
            Place("Rome", "Italy"),
            Place("Austin", "TX", ("78701",)),  # a second trip entry to the same city
        ],
    )


def test_features_use_only_the_past():
    base = day_number(date(2017, 7, 14)) * 86400 + 12 * 3600
    a = _activity([base, base + 600, base + 1200], [1000, 3000, 5000], [1, 3, 2], [SWIPE, SWIPE, SWIPE])
    f = observable_features(a)
    assert f["burst_1h"].tolist() == pytest.approx([0, 1 - 1 / 240, 2 - 2 / 240])  # beyond the 30-day level
    assert f["foreign"].tolist() == [0, 0, 1]
    # places compare by city and state, as the bank sees them: the second Austin entry is not new
    assert f["new_city"].tolist() == [0, 0, 1]  # the card's very first row is not "new" to anything
    assert f["new_state_or_country"].tolist() == [0, 0, 1]
    assert f["new_merchant"].tolist() == [0, 0, 1]
    assert f["new_merchants_24h"].tolist() == [0, 0, 0]
    assert f["amount_zscore"][2] == pytest.approx(3.0)  # (5000 - 2000) / 1000
    # appending later rows never changes the features or the probability of earlier rows
    longer = _activity(
        [base, base + 600, base + 1200, base + 1300],
        [1000, 3000, 5000, -5000],
        [1, 3, 2, 0],
        [SWIPE, SWIPE, SWIPE, ONLINE],
    )
    g = observable_features(longer)
    for name in FEATURES:
        assert np.array_equal(g[name][:3], f[name]), name
    assert np.array_equal(fraud_probability(longer)[:3], fraud_probability(a))
    assert g["negative_amount"][3] == 1 and g["online"][3] == 1
    assert g["new_merchant"][3] == 1 and g["new_city"][3] == 0  # online: a new merchant, no city
    assert g["new_merchants_24h"][3] == pytest.approx(np.log1p(1))  # Rome was new


def test_channel_and_hour_unusual_for_the_card():
    noon = day_number(date(2017, 7, 1)) * 86400 + 12 * 3600
    days = [noon + d * 86400 for d in range(60)]
    a = _activity([*days, days[-1] + 15 * 3600], [1000] * 61, [1] * 60 + [0], [SWIPE] * 60 + [ONLINE])
    f = observable_features(a)
    assert f["unusual_channel"].tolist() == [0] * 60 + [1]  # online after 60 in-person purchases
    assert f["unusual_hour"].tolist() == [0] * 60 + [1]  # 3 am after 60 purchases at noon
    assert f["night"][60] == 1 and f["night"][:60].sum() == 0
    assert f["amount_zscore"].sum() == 0  # no spread in the amounts


def test_history_terms_carry_most_of_the_log_odds():
    history = ("new_merchant", "new_city", "new_state_or_country", "burst_1h", "new_merchants_24h")
    per_row = ("online", "foreign", "night", "high_risk_mcc", "bad_credential", "negative_amount")
    assert set(history) | set(per_row) <= set(FEATURES)
    assert max(COEFFICIENTS[k] for k in per_row) < min(COEFFICIENTS[k] for k in ("new_merchant", "burst_1h"))
    assert sum(COEFFICIENTS[k] for k in per_row) < sum(COEFFICIENTS[k] for k in history) / 3


def test_probability_is_the_documented_logistic():
    base = day_number(date(2017, 7, 14)) * 86400 + 12 * 3600
    a = _activity([base], [1000], [1], [SWIPE])
    assert fraud_probability(a)[0] == pytest.approx(1 / (1 + np.exp(-COEFFICIENTS["intercept"])))


def test_error_combos_cover_singles_and_pairs():
    assert ERROR_COMBOS[0] == ()
    assert len(ERROR_COMBOS) == 1 + 7 + 21
    assert ("Bad PIN", "Insufficient Balance") in ERROR_COMBOS


def test_clv_expected_matches_the_average_of_many_draws():
    profile, _ = make_user(7, 3, START, CUTOFF)
    first, stop = clv_window(CUTOFF, END)
    expected = clv_expected(profile, CUTOFF, END)
    totals = []
    for seed in range(30):  # same latent profile, different activity streams
        act = genuine_activity(profile, seed, day_number(END))
        day = act.ts // 86400
        totals.append(act.amount_cents[(day >= first) & (day < stop)].sum() / 100)
    assert np.mean(totals) == pytest.approx(expected, rel=0.08)


def test_users_open_cards_after_18_and_before_the_cutoff():
    for u in range(30):
        profile, record = make_user(7, u, START, CUTOFF)
        birth = date(record.user_row["birth_year"], record.user_row["birth_month"], 1)
        assert (
            profile.start_day >= day_number(date(birth.year + 18, birth.month, 1)) or birth.year + 18 > 2017
        )
        assert max(c.open_day for c in profile.cards) < day_number(CUTOFF)
        assert 1 <= len(profile.cards) == record.user_row["num_credit_cards"] <= 9


def test_a_blocked_cards_purchases_move_to_another_open_card_or_are_not_made():
    from cdp.synth.attacks import Episode
    from cdp.synth.card_blocks import blocked_rows, reroute_blocked

    profile, _ = make_user(7, 5, START, CUTOFF)  # card 0 opened 2007, card 1 (no chip) 2013
    assert len(profile.cards) == 2 and profile.cards[1].chip_day is None
    genuine = genuine_activity(profile, 7, day_number(END))
    alone = day_number(date(2010, 5, 1)) * 86400  # only card 0 is open
    both = day_number(date(2014, 5, 1)) * 86400
    episodes = [
        Episode(1, 0, alone - 86400, alone - 3600, alone, alone + 60 * 86400),
        Episode(2, 0, both - 86400, both - 3600, both, both + 60 * 86400),
    ]
    in_window = blocked_rows(genuine.card, genuine.ts, episodes)
    alone_rows = in_window & (genuine.ts < both)
    assert alone_rows.sum() > 5 and (in_window & ~alone_rows).sum() > 5

    after = reroute_blocked(genuine, profile, episodes, np.random.default_rng(0))
    assert not blocked_rows(after.card, after.ts, episodes).any()
    assert len(after) == len(genuine) - alone_rows.sum()  # nowhere to go in 2010: not made
    moved = (after.ts >= both) & (after.ts < both + 60 * 86400)
    assert (after.card[moved] == 1).all()
    assert (after.channel[moved & (after.channel != ONLINE)] == SWIPE).all()  # card 1 has no chip
    untouched = (after.ts < alone) | (after.ts >= both + 60 * 86400)
    assert np.array_equal(
        after.card[untouched], genuine.card[(genuine.ts < alone) | (genuine.ts >= both + 60 * 86400)]
    )
    assert reroute_blocked(genuine, profile, [], np.random.default_rng(0)) is genuine
