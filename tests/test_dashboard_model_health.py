"""The Model health page under AppTest over a home with real model-health data: versions registered with
their metrics and approved (champion history), the monitor's drift series and its alarms evaluated, pipeline
runs with their gate's outcome, a drift report. Every figure shown is checked against SQL over the page's
tables and against the sources (registry, alarms) they were built from."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st

from cdp.backends import Backends
from cdp.metrics.port import MetricDatum
from monitoring.rules import FEATURE_DRIFT_SHARE, NAMESPACE, SCORE_PSI, model_alarms
from monitoring.snapshots.model_health import refresh_model_health
from pipelines.local.record import RunRecord, StepRecord
from tests.contract.test_registry_contract import lineage, write_tiny_model
from tests.identity_support import issue
from tests.test_dashboard_app import TOKENS, shown_text, signed_in

MODEL = "cdp-fraud"
METRICS = (
    {"pr_auc": 0.41, "recall_at_budget": 0.63},
    {"pr_auc": 0.47, "recall_at_budget": 0.66},
    {"pr_auc": 0.39},
)
PARAMS = {"max_depth": 2, "eta": 0.3}


@pytest.fixture(autouse=True)
def fresh_cache():
    st.cache_resource.clear()  # the app's Backends and read sessions belong to one test's home
    yield
    st.cache_resource.clear()


def _run(b: Backends, execution_id: str, started: datetime, gate: str, failure: str | None) -> None:
    """A pipeline run record as the local executor leaves it (`run.json`), with its gate's branch."""
    iso = started.isoformat()
    RunRecord(
        pipeline_name="fraud", execution_id=execution_id, definition_sha256="0" * 64, parameters={},
        status="Failed" if failure else "Succeeded", started_at=iso,
        ended_at=(started + timedelta(minutes=3)).isoformat(), failure_reason=failure,
        steps=[
            StepRecord("Train", "Training", status="Succeeded", started_at=iso),
            StepRecord("Gate", "Condition", status="Succeeded", outcome=gate),
        ],
    ).save(b.settings.state_dir / "pipelines" / "runs" / execution_id / "run.json")  # fmt: skip


def build_model_health(b: Backends, tmp: Path) -> datetime:
    """Three fraud versions (v1 then v2 approved, v3 pending), drift series and alarms evaluated twice (the
    score PSI alarm OK, then ALARM), two pipeline runs (gate passed; gate failed) and a drift report; the
    model-health tables refreshed after each evaluation. Returns `now`."""
    # 30 s into a 5-minute alarm period (alarms read complete periods only): each point below falls in a
    # known period whatever the clock says
    period = 300
    now = datetime.fromtimestamp((int(datetime.now(UTC).timestamp()) // period - 1) * period + 30, UTC)
    model_dir = write_tiny_model(tmp / "model")
    for i, metrics in enumerate(METRICS, start=1):
        b.model_registry.register(
            MODEL, model_dir, metrics, PARAMS, lineage(f"run-{i}"), registered_by="ml-pipeline"
        )
    b.model_registry.approve(MODEL, 1, "approver-1", "first release")
    b.model_registry.approve(MODEL, 2, "approver-1", "retrained after drift")
    series = {SCORE_PSI: (0.05, 0.12, 0.41), FEATURE_DRIFT_SHARE: (0.1, 0.2, 0.3)}
    for metric, values in series.items():
        b.metrics.put_metric_data(
            [
                MetricDatum(NAMESPACE, metric, v, now - timedelta(minutes=12 - 5 * k), {"Model": MODEL})
                for k, v in enumerate(values)
            ]
        )
    for alarm in model_alarms(MODEL):
        b.alarms.put_alarm(alarm)
    earlier = now - timedelta(minutes=5)
    b.alarms.evaluate(now=earlier)  # the monitor's earlier run: PSI 0.12, under its threshold
    refresh_model_health(b, (MODEL,), now=earlier)  # alarm states are appended at every refresh
    b.alarms.evaluate(now=now)  # PSI 0.41 in the last period
    _run(b, "run-ok", now - timedelta(hours=2), "if", None)
    _run(b, "run-gated", now - timedelta(hours=1), "else", "step 'Fail' failed: pr_auc 0.39 below 0.40")
    report = b.settings.home / "monitoring" / "reports" / MODEL / "20260101T000000"
    report.mkdir(parents=True)
    (report / "report.json").write_text(json.dumps({"created_at": now.isoformat(), "share_drifted": 0.3}))
    (report / "report.html").write_text("<html><body>drift</body></html>")
    refresh_model_health(b, (MODEL,), now=now)
    return now


def _table_with(at, *columns: str):  # noqa: ANN001, ANN202 - an AppTest, a DataFrame
    (frame,) = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)][:1]
    return frame


def test_model_health_shows_the_registry_drift_alarms_and_gates_as_sql_and_the_sources_say(tmp_path):
    b = Backends()
    build_model_health(b, tmp_path)
    at = signed_in(issue(b, "data-scientist-1", "data-scientist"))
    assert at.radio(key="page").options == ["Model health"]
    assert not at.exception and not at.error
    assert not [i.value for i in at.info if "No data yet" in i.value and "quarantine" not in i.value.lower()]

    versions = b.catalog.query(
        "SELECT count(*) AS n, sum(CASE WHEN status = 'PendingManualApproval' THEN 1 ELSE 0 END) AS pending "
        "FROM dash_model_versions"
    ).to_pylist()[0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Versions"] == f"{versions['n']:,}" == str(len(b.model_registry.list(MODEL)))
    assert metrics["Pending approval"] == f"{versions['pending']:,}" == "1"
    assert metrics["Champions"] == f"{MODEL} v{b.model_registry.champion_version(MODEL)}" == f"{MODEL} v2"

    shown_metrics = b.catalog.query("SELECT DISTINCT metric FROM dash_model_metrics ORDER BY 1")["metric"]
    assert (
        at.selectbox(key="model_metric").options
        == shown_metrics.to_pylist()
        == ["pr_auc", "recall_at_budget"]
    )

    history = _table_with(at, "change", "actor")
    expected = sorted((e.version, e.change, e.actor) for e in b.model_registry.history(MODEL))
    assert sorted(zip(history["version"], history["change"], history["actor"], strict=True)) == expected
    assert len(expected) == 3  # v1 became, v1 stopped, v2 became

    latest = _table_with(at, "alarm_name", "state", "threshold")
    states = dict(zip(latest["alarm_name"], latest["state"], strict=True))
    assert states == {a.name: str(b.alarms.state(a.name)) for a in model_alarms(MODEL)}
    assert states[f"{MODEL}-drift-{SCORE_PSI}"] == "ALARM"  # PSI 0.41 > 0.25 in the last period
    psi_states = b.catalog.query(
        f"SELECT state FROM dash_alarm_history WHERE alarm_name = '{MODEL}-drift-{SCORE_PSI}' "
        "ORDER BY observed_at"
    )["state"].to_pylist()
    assert psi_states == ["OK", "ALARM"]  # the page's states over time

    runs = _table_with(at, "execution_id", "gate")
    sql_runs = b.catalog.query(
        "SELECT execution_id, gate, status FROM dash_pipeline_runs ORDER BY 1"
    ).to_pylist()
    assert sorted(zip(runs["execution_id"], runs["gate"], runs["status"], strict=True)) == [
        (r["execution_id"], r["gate"], r["status"]) for r in sql_runs
    ]
    assert dict(zip(runs["execution_id"], runs["gate"], strict=True)) == {
        "run-gated": "Gate: else",
        "run-ok": "Gate: if",
    }

    decided = _table_with(at, "status_reason")
    assert set(decided["status_reason"]) >= {"retrained after drift"}
    points = b.catalog.query("SELECT count(*) AS n FROM dash_monitor_metrics").to_pylist()[0]["n"]
    assert points == 6
    assert len(at.get("vega_lite_chart")) >= 3  # metrics per version, drift series, alarm states
    assert any(e.proto.label.startswith("Open the latest") for e in at.get("download_button"))
    text = shown_text(at)
    assert not TOKENS.search(text)

    at.selectbox(key="model_metric").set_value("recall_at_budget").run()
    assert not at.exception
