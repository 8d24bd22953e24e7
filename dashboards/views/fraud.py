"""Fraud operations: fraud rate and losses by channel, MCC group, state and hour; alerts per day with
precision and recall per model version once labels are in; top reason codes; freshness and stream lag."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.data import DashboardData
from dashboards.queries import FraudFilter, fraud_queries
from dashboards.views.common import dollars, no_data, rate
from features.mcc import mcc_group

REFRESH_HINT = "Run the batch job (`cdp batch`) or land the stream; the tables refresh when they finish."
SCORING_HINT = "Score the stream (`cdp stream run`); its tables refresh when it finishes."
SUMS = ["transactions", "frauds", "amount_cents", "fraud_amount_cents"]


def _with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["fraud rate %"] = 100.0 * out["frauds"] / out["transactions"].where(out["transactions"] > 0)
    out["losses $"] = out["fraud_amount_cents"] / 100.0
    return out


def render(data: DashboardData, f: FraudFilter) -> None:
    """The page for filter `f`."""
    q = fraud_queries(f)
    by_day_channel = data.frame(q["day_channel"].sql, q["day_channel"].needs)
    if by_day_channel is None or not int(by_day_channel["transactions"].fillna(0).sum()):
        no_data("no transactions in the lake for these filters", REFRESH_HINT)
    else:
        t = by_day_channel[SUMS].sum()
        cols = st.columns(4)
        cols[0].metric("Transactions", f"{int(t['transactions']):,}")
        cols[1].metric("Frauds", f"{int(t['frauds']):,}")
        fraud_rate = rate(t["frauds"], t["transactions"])
        cols[2].metric("Fraud rate", f"{100 * fraud_rate:.3f} %" if fraud_rate is not None else "-")
        cols[3].metric("Losses (net fraud amount)", dollars(t["fraud_amount_cents"]))

        daily = _with_rates(by_day_channel.groupby("day", as_index=False)[SUMS].sum())
        daily["day"] = pd.to_datetime(daily["day"])
        weekly = daily.set_index("day")[["frauds", "losses $"]].resample("W").sum()
        st.subheader("Frauds and losses per week")
        st.line_chart(weekly, y=["frauds"], height=220)
        st.area_chart(weekly, y=["losses $"], height=220)

        left, right = st.columns(2)
        by_channel = by_day_channel.groupby("channel", as_index=False)[SUMS].sum()
        with left:
            st.subheader("By channel")
            st.bar_chart(_with_rates(by_channel), x="channel", y="fraud rate %", height=260)
        by_mcc = data.frame(q["by_mcc"].sql, q["by_mcc"].needs)
        if by_mcc is not None:
            by_mcc["mcc group"] = [mcc_group(int(m)) if pd.notna(m) else "unknown" for m in by_mcc["mcc"]]
            groups = by_mcc.groupby("mcc group", as_index=False)[SUMS].sum()
            with right:
                st.subheader("Losses by MCC group")
                st.bar_chart(_with_rates(groups), x="mcc group", y="losses $", height=260, horizontal=True)

        left, right = st.columns(2)
        by_state = data.frame(q["by_state"].sql, q["by_state"].needs)
        if by_state is not None:
            top = _with_rates(by_state).sort_values("losses $", ascending=False).head(15)
            with left:
                st.subheader("Losses by merchant state (top 15)")
                st.bar_chart(top, x="state", y="losses $", height=260)
        by_hour = data.frame(q["by_hour"].sql, q["by_hour"].needs)
        if by_hour is not None:
            with right:
                st.subheader("Fraud rate by hour of day")
                st.line_chart(_with_rates(by_hour), x="hour", y="fraud rate %", height=260)

    st.header("Alerts")
    alerts = data.frame(q["alerts"].sql, q["alerts"].needs)
    if alerts is None:
        no_data("no scored stream in these dates", SCORING_HINT)
    else:
        alerts["day"] = pd.to_datetime(alerts["day"])
        alerts["model version"] = "v" + alerts["model_version"].astype(str)
        st.subheader("Alerts per day, per model version")
        st.bar_chart(alerts, x="day", y="alerts", color="model version", height=240)
        per_version = alerts.groupby("model version")[["scored", "alerts", "true_alerts", "frauds"]].sum()
        labelled = per_version["frauds"] > 0
        per_version["precision"] = (per_version["true_alerts"] / per_version["alerts"].where(labelled)).round(
            3
        )
        per_version["recall"] = (per_version["true_alerts"] / per_version["frauds"].where(labelled)).round(3)
        st.caption("Precision and recall appear once fraud labels are in (blank: no labelled fraud yet).")
        st.dataframe(per_version.reset_index(), hide_index=True)

    reasons = data.frame(q["reasons"].sql, q["reasons"].needs)
    st.subheader("Top reason codes of the alerts")
    if reasons is None:
        no_data("no alert with reason codes in these months", SCORING_HINT)
    else:
        st.bar_chart(
            reasons, x="feature", y=["first_reason", "alerts"], stack=False, horizontal=True, height=280
        )

    st.header("Data freshness")
    fresh = data.frame(q["freshness"].sql, q["freshness"].needs)
    if fresh is None:
        no_data("no table landed", REFRESH_HINT)
    else:
        by_name = fresh.set_index("table_name")
        if "transactions" in by_name.index and "transactions_scored" in by_name.index:
            landed, scored = (
                by_name.loc["transactions", "last_event"],
                by_name.loc["transactions_scored", "last_event"],
            )
            lag = (pd.Timestamp(landed) - pd.Timestamp(scored)).total_seconds() / 3600
            st.metric("Stream scoring lag (event time, hours)", f"{max(lag, 0.0):,.1f}")
        st.dataframe(fresh, hide_index=True)
