"""Model health: registry versions and metrics, champion history, drift metrics and alarm states over
time, pipeline runs and gate decisions with reasons, the drift reports, quarantine counts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboards.data import DashboardData
from dashboards.queries import model_queries
from dashboards.views.common import no_data

HINT = "Run a pipeline or the monitor (`cdp monitor run`): the monitor builds these tables."
STATE_LEVEL = {"OK": 0, "INSUFFICIENT_DATA": 1, "ALARM": 2}


def render(data: DashboardData, model: str | None) -> None:
    q = model_queries()

    def frame(name: str) -> pd.DataFrame | None:
        f = data.frame(q[name].sql, q[name].needs)
        if f is not None and model and "model_name" in f.columns:
            f = f[f["model_name"] == model]
        return f if f is not None and len(f) else None

    versions = frame("versions")
    st.subheader("Registered versions")
    if versions is None:
        no_data("no model version registered", HINT)
    else:
        champions = versions[versions["is_champion"]]
        cols = st.columns(3)
        cols[0].metric("Versions", f"{len(versions):,}")
        cols[1].metric(
            "Champions",
            ", ".join(f"{m} v{v}" for m, v in zip(champions["model_name"], champions["version"], strict=True))
            or "none",
        )
        cols[2].metric("Pending approval", f"{int((versions['status'] == 'PendingManualApproval').sum()):,}")
        st.dataframe(versions, hide_index=True)
    metrics = frame("metrics")
    if metrics is not None:
        st.subheader("Evaluation metrics per version")
        chosen = st.selectbox("Metric", sorted(metrics["metric"].unique()), key="model_metric")
        shown = metrics[metrics["metric"] == chosen].assign(version=lambda m: "v" + m["version"].astype(str))
        st.bar_chart(shown, x="version", y="value", color="model_name", stack=False, height=240)

    st.subheader("Champion history")
    champions = frame("champions")
    if champions is None:
        no_data("no champion decided yet", HINT)
    else:
        st.dataframe(champions, hide_index=True)

    st.subheader("Drift and labelled performance over time")
    monitor = frame("monitor")
    if monitor is None:
        no_data("no monitor metric published", HINT)
    else:
        monitor["series"] = monitor["model_name"] + " " + monitor["metric"]
        st.line_chart(monitor, x="at", y="value", color="series", height=260)
    alarms = frame("alarms")
    if alarms is not None:
        alarms["level"] = alarms["state"].map(STATE_LEVEL).fillna(1)
        st.caption("Alarm states over time (0 OK, 1 insufficient data, 2 ALARM)")
        st.line_chart(alarms, x="observed_at", y="level", color="alarm_name", height=220)
        st.dataframe(
            alarms.drop_duplicates("alarm_name", keep="last").drop(columns=["level"]), hide_index=True
        )

    st.subheader("Pipeline runs and gate decisions")
    runs = data.frame(q["runs"].sql, q["runs"].needs)
    if runs is None:
        no_data("no pipeline run recorded", HINT)
    else:
        st.dataframe(runs, hide_index=True)
    if versions is not None:
        decided = versions.dropna(subset=["status_reason"])[
            ["model_name", "version", "status", "status_reason"]
        ]
        if len(decided):
            st.caption("Decisions with their reasons")
            st.dataframe(decided, hide_index=True)

    st.subheader("Drift reports")
    reports = frame("reports")
    if reports is None:
        no_data("no drift report written", HINT)
    else:
        st.dataframe(reports, hide_index=True)
        latest = reports.iloc[0]
        path = Path(str(latest["html_path"]))
        if path.is_file():
            label = f"Open the latest {latest['model_name']} drift report"
            st.download_button(label, path.read_bytes(), file_name=path.name, mime="text/html", key="drift")

    st.subheader("Quarantine")
    quarantine = data.frame(q["quarantine"].sql, q["quarantine"].needs)
    if quarantine is None:
        no_data("nothing quarantined", "Rows the batch job or the stream refuse are counted here.")
    else:
        st.bar_chart(quarantine, x="reason", y="row_count", color="source", horizontal=True, height=240)
