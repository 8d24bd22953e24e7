"""Customers (marketing): segments and their profiles, the CLV distribution and bands, the segment x CLV
matrix. Aggregates of at least the configured number of customers only; tokens never appear."""

from __future__ import annotations

import streamlit as st

from dashboards.data import DashboardData
from dashboards.queries import customer_queries
from dashboards.views.common import no_data

HINT = (
    "Train the CLV and segmentation models and run the monitor (`cdp monitor run`): it builds these tables."
)


def render(data: DashboardData, segments: tuple[str, ...] | None, min_customers: int) -> None:
    q = customer_queries(segments)
    seg = data.frame(q["segments"].sql, q["segments"].needs)
    if seg is None:
        no_data("no customer segments", HINT)
        return
    cols = st.columns(3)
    cols[0].metric("Customers in the segments shown", f"{int(seg['customers'].sum()):,}")
    cols[1].metric("Segments", f"{len(seg):,}")
    mean = (seg["clv_mean_cents"] * seg["customers"]).sum() / max(seg["customers"].sum(), 1)
    cols[2].metric("Mean 12-month CLV", f"${mean / 100:,.0f}")
    seg["mean CLV $"] = seg["clv_mean_cents"] / 100
    st.subheader("Segments: customers and mean CLV")
    left, right = st.columns(2)
    left.bar_chart(seg, x="segment_name", y="customers", height=260)
    right.bar_chart(seg, x="segment_name", y="mean CLV $", height=260)

    profiles = data.frame(q["profiles"].sql, q["profiles"].needs)
    if profiles is not None:
        st.subheader("Segment profiles (mean of each feature)")
        st.dataframe(profiles.pivot(index="feature", columns="segment_name", values="mean").round(2))

    st.subheader("CLV distribution")
    left, right = st.columns(2)
    hist = data.frame(q["histogram"].sql, q["histogram"].needs)
    if hist is not None:
        hist["CLV from $"] = (hist["bin_low_cents"] / 100).round(0)
        left.bar_chart(hist, x="CLV from $", y="customers", height=260)
    bands = data.frame(q["bands"].sql, q["bands"].needs)
    if bands is not None:
        right.bar_chart(bands, x="band", y="customers", height=260)
    st.caption(f"Counts under {min_customers} customers are not shown.")

    matrix = data.frame(q["matrix"].sql, q["matrix"].needs)
    if matrix is not None:
        st.subheader("Segment x CLV band (customers)")
        order = matrix.drop_duplicates("band").sort_values("band_order")["band"].tolist()
        cells = matrix.assign(
            shown=[
                f"<{min_customers}" if s else f"{int(c):,}"
                for c, s in zip(matrix["customers"], matrix["suppressed"], strict=True)
            ]
        )
        table = cells.pivot(index="segment_name", columns="band", values="shown").reindex(columns=order)
        st.dataframe(table.fillna("0"))
        counts = matrix.dropna(subset=["customers"]).astype({"customers": "int64"})
        st.bar_chart(counts, x="segment_name", y="customers", color="band", height=260)
