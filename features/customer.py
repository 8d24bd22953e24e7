"""The customer view: one row per user token as of a cut-off, for CLV and segmentation.

Recency, frequency and monetary value, tenure, spending mix by MCC group, channel mix, refund and foreign
shares, active cards, spend trend, and the non-personal profile attributes of the `customers` table.
Amounts are in cents; "spend" is net (refunds count negative), "purchases" are the positive amounts.
To add a feature, add one line below and run `python -m features` to rewrite `features/sql/`.
"""

from __future__ import annotations

from features.asof_spec import (
    EVER,
    AsOfFeatureView,
    Count,
    DaysSince,
    Distinct,
    Period,
    Profile,
    Ratio,
    Sum,
    Value,
    Where,
)
from features.mcc import group_names

D30, D90, D365 = Period(30), Period(90), Period(365)
D90_BEFORE = Period(180, 90)  # the 90 days before the last 90
PURCHASE = (Where("is_purchase"),)

_rfm = tuple(
    f
    for days, p in ((30, D30), (90, D90), (365, D365))
    for f in (
        Value(f"purchases_{days}d", Count(p, PURCHASE)),
        Value(f"net_spend_{days}d", Sum(p, "amount_cents")),
    )
)

_spend_mix = tuple(
    Ratio(
        f"spend_share_{group}_365d",
        Sum(D365, "amount_cents", (*PURCHASE, Where("mcc_group", group))),
        Sum(D365, "amount_cents", PURCHASE),
    )
    for group in group_names()
)

_channel_mix = tuple(
    Ratio(f"channel_share_{channel}_365d", Count(D365, (Where("channel", channel),)), Count(D365))
    for channel in ("online", "chip", "swipe")
)

CUSTOMER_VIEW = AsOfFeatureView(
    name="customer",
    key="user_token",
    features=(
        # recency, frequency, monetary value, tenure
        DaysSince("recency_days", "last", PURCHASE),
        DaysSince("tenure_days", "first"),
        *_rfm,
        Value("transactions_ever", Count(EVER)),
        Ratio("mean_ticket_365d", Sum(D365, "amount_cents", PURCHASE), Count(D365, PURCHASE)),
        # how the customer spends
        *_spend_mix,
        *_channel_mix,
        Ratio("refund_share_365d", Count(D365, (Where("is_refund"),)), Count(D365)),
        Ratio("foreign_share_365d", Count(D365, (Where("is_foreign"),)), Count(D365)),
        Ratio("error_share_365d", Count(D365, (Where("has_error"),)), Count(D365)),
        Value("active_cards_90d", Distinct(D90, "card_token")),
        Value("active_cards_365d", Distinct(D365, "card_token")),
        Value("merchants_365d", Distinct(D365, "merchant_id")),
        Ratio("spend_trend_90d", Sum(D90, "amount_cents"), Sum(D90_BEFORE, "amount_cents")),
        # the shape of the last two years (a CLV model reads the customer's trend from these)
        Value("net_spend_90_180d", Sum(D90_BEFORE, "amount_cents")),
        Value("net_spend_180_270d", Sum(Period(270, 180), "amount_cents")),
        Value("net_spend_270_365d", Sum(Period(365, 270), "amount_cents")),
        Value("net_spend_365_730d", Sum(Period(730, 365), "amount_cents")),
        # profile (no personal data: coarsened or numeric attributes only)
        Profile("yearly_income"),
        Profile("fico_score"),
        Profile("num_credit_cards"),
        Profile("gender"),
        Profile("age_band_start"),
    ),
)

CUSTOMER_VIEW.check()
