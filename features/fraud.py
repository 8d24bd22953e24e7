"""The fraud view: one row of features per transaction, keyed by card, from the card's prior events.

To add a feature, add one line below (a kind from `features.spec` over a column of `features.columns`),
run `python -m features` to rewrite `features/sql/fraud_card.sql`, and both paths have it.
"""

from __future__ import annotations

from features.spec import (
    CardAttribute,
    ChangedFromPrevious,
    Current,
    EventFeatureView,
    FirstSeen,
    HistoryZScore,
    PriorShare,
    SecondsSincePrevious,
    Window,
    WindowCount,
    WindowMax,
    WindowMean,
    WindowNewCount,
    WindowSum,
)

H1 = Window("1h", 3_600)
H24 = Window("24h", 86_400)
D7 = Window("7d", 7 * 86_400)
D30 = Window("30d", 30 * 86_400)

_velocity = tuple(
    f
    for w in (H1, H24, D7, D30)
    for f in (
        WindowCount(w),
        WindowSum(w, "amount_cents", "amount"),
        WindowMean(w, "amount_cents", "amount"),
        WindowMax(w, "amount_cents", "amount"),
    )
)

FRAUD_VIEW = EventFeatureView(
    name="fraud_card",
    key="card_token",
    features=(
        # this event
        Current("amount_cents"),
        Current("is_online"),
        Current("is_foreign"),
        Current("is_refund"),
        Current("has_error"),
        Current("has_bad_credential"),
        Current("hour_of_day"),
        Current("mcc_group"),
        Current("is_high_risk_mcc"),
        # velocity and amounts over windows
        *_velocity,
        WindowSum(H24, "has_error", "error", "count"),
        WindowSum(H24, "has_bad_credential", "bad_credential", "count"),
        WindowSum(H24, "is_online", "online", "count"),
        WindowSum(H24, "is_foreign", "foreign", "count"),
        # against the card's history
        HistoryZScore("amount_cents", "amount"),
        SecondsSincePrevious(),
        FirstSeen("merchant_id", "merchant"),
        FirstSeen("city_key", "city"),
        FirstSeen("merchant_state", "state_or_country"),
        FirstSeen("mcc", "mcc"),
        WindowNewCount(H1, "merchant_id", "merchant"),
        WindowNewCount(H24, "merchant_id", "merchant"),
        WindowNewCount(D7, "merchant_id", "merchant"),
        PriorShare("channel", "channel"),
        ChangedFromPrevious("channel", "channel"),
        PriorShare("hour_of_day", "hour"),
        # the card
        CardAttribute("card_age_days"),
        CardAttribute("credit_limit"),
        CardAttribute("has_chip"),
    ),
)

FRAUD_VIEW.check()
