"""Model-health tables for the dashboards, from the registry, the metrics store, the alarms, the pipeline
run records and the drift reports. Model names, versions, metrics, states and reasons only: no customer
data (reasons are the gate's and approvers' one-line texts).

- `dash_model_versions`: every registered version, its status, champion flag and decision reason;
- `dash_model_metrics`: each version's evaluation metrics (long format);
- `dash_champion_history`: when each version became or stopped being the champion, by whom and why;
- `dash_monitor_metrics`: the monitor's published series (drift share, score PSI, labelled PR-AUC);
- `dash_alarm_history`: each alarm's state at every refresh (appended, so states show over time);
- `dash_pipeline_runs`: the local executor's runs with their gate outcome and failure reason;
- `dash_drift_reports`: the drift reports written, with their share of drifted columns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cdp.aggregates.snapshots import read_snapshot, write_snapshot
from cdp.metrics.port import MetricQuery, Statistic
from monitoring.rules import (
    FEATURE_DRIFT_SHARE,
    LABELLED_PR_AUC,
    LABELLED_PR_AUC_RATIO,
    NAMESPACE,
    PIPELINES,
    SCORE_PSI,
    model_alarms,
)

if TYPE_CHECKING:
    from cdp.backends import Backends

MODEL_VERSIONS = "dash_model_versions"
MODEL_METRICS = "dash_model_metrics"
CHAMPION_HISTORY = "dash_champion_history"
MONITOR_METRICS = "dash_monitor_metrics"
ALARM_HISTORY = "dash_alarm_history"
PIPELINE_RUNS = "dash_pipeline_runs"
DRIFT_REPORTS = "dash_drift_reports"

MONITORED_METRICS = (FEATURE_DRIFT_SHARE, SCORE_PSI, LABELLED_PR_AUC, LABELLED_PR_AUC_RATIO)
METRICS_LOOKBACK = timedelta(days=90)
METRICS_PERIOD_SECONDS = 60
ALARM_HISTORY_ROWS = 5_000  # the newest states kept per refresh
REASON_CHARS = 300

_TS = pa.timestamp("s")
SCHEMAS: dict[str, pa.Schema] = {
    MODEL_VERSIONS: pa.schema(
        [("model_name", pa.string()), ("version", pa.int32()), ("status", pa.string()),
         ("is_champion", pa.bool_()), ("created_at", _TS), ("status_reason", pa.string()),
         ("registered_by", pa.string()), ("pipeline_run_id", pa.string())]
    ),
    MODEL_METRICS: pa.schema(
        [("model_name", pa.string()), ("version", pa.int32()), ("metric", pa.string()),
         ("value", pa.float64())]
    ),
    CHAMPION_HISTORY: pa.schema(
        [("model_name", pa.string()), ("version", pa.int32()), ("change", pa.string()), ("at", _TS),
         ("actor", pa.string()), ("action", pa.string()), ("reason", pa.string())]
    ),
    MONITOR_METRICS: pa.schema(
        [("model_name", pa.string()), ("metric", pa.string()), ("at", _TS), ("value", pa.float64())]
    ),
    ALARM_HISTORY: pa.schema(
        [("alarm_name", pa.string()), ("model_name", pa.string()), ("metric", pa.string()),
         ("threshold", pa.float64()), ("state", pa.string()), ("observed_at", _TS)]
    ),
    PIPELINE_RUNS: pa.schema(
        [("pipeline_name", pa.string()), ("execution_id", pa.string()), ("status", pa.string()),
         ("started_at", _TS), ("ended_at", _TS), ("gate", pa.string()), ("failure_reason", pa.string())]
    ),
    DRIFT_REPORTS: pa.schema(
        [("model_name", pa.string()), ("created_at", _TS), ("share_drifted", pa.float64()),
         ("html_path", pa.string())]
    ),
}  # fmt: skip


def _naive(moment: datetime | str | None) -> datetime | None:
    """UTC, without tzinfo and microseconds (the tables' timestamps)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _short(text: str | None) -> str | None:
    return None if text is None else " ".join(str(text).split())[:REASON_CHARS]


def _table(name: str, rows: Sequence[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=SCHEMAS[name])


def registry_tables(backends: Backends, models: Sequence[str]) -> dict[str, pa.Table]:
    """Versions, their metrics and the champion history of `models`."""
    registry = backends.model_registry
    versions, metrics, history = [], [], []
    for model in models:
        for v in registry.list(model):
            versions.append(
                {"model_name": v.model_name, "version": v.version, "status": v.status,
                 "is_champion": v.is_champion, "created_at": _naive(v.created_at),
                 "status_reason": _short(v.status_reason), "registered_by": v.registered_by,
                 "pipeline_run_id": v.lineage.pipeline_run_id}
            )  # fmt: skip
            metrics += [
                {"model_name": v.model_name, "version": v.version, "metric": k, "value": float(x)}
                for k, x in sorted(v.metrics.items())
            ]
        history += [
            {"model_name": e.model_name, "version": e.version, "change": e.change, "at": _naive(e.at),
             "actor": e.actor, "action": e.action, "reason": _short(e.reason)}
            for e in registry.history(model)
        ]  # fmt: skip
    return {
        MODEL_VERSIONS: _table(MODEL_VERSIONS, versions),
        MODEL_METRICS: _table(MODEL_METRICS, metrics),
        CHAMPION_HISTORY: _table(CHAMPION_HISTORY, history),
    }


def monitor_metrics(backends: Backends, models: Sequence[str], now: datetime) -> pa.Table:
    """The monitor's series of the last `METRICS_LOOKBACK`, one point per minute at most."""
    rows = []
    for model in models:
        for metric in MONITORED_METRICS:
            query = MetricQuery(
                NAMESPACE, metric, Statistic.AVERAGE, METRICS_PERIOD_SECONDS, {"Model": model}
            )
            points = backends.metrics.get_statistics(query, now - METRICS_LOOKBACK, now)
            rows += [
                {"model_name": model, "metric": metric, "at": _naive(p.timestamp), "value": p.value}
                for p in points
            ]
    return _table(MONITOR_METRICS, rows)


def alarm_history(backends: Backends, models: Sequence[str], now: datetime) -> pa.Table:
    """The previous `dash_alarm_history` and every alarm's state now (newest `ALARM_HISTORY_ROWS`)."""
    observed = []
    for model in models:
        for alarm in model_alarms(model):
            try:
                state = str(backends.alarms.state(alarm.name))
            except LookupError:
                continue  # not put yet
            observed.append(
                {"alarm_name": alarm.name, "model_name": model, "metric": alarm.metric.name,
                 "threshold": float(alarm.threshold), "state": state, "observed_at": _naive(now)}
            )  # fmt: skip
    previous = read_snapshot(backends, ALARM_HISTORY)
    rows = (previous.to_pylist() if previous is not None else []) + observed
    return _table(ALARM_HISTORY, rows[-ALARM_HISTORY_ROWS:])


def pipeline_runs(state_dir: Path) -> pa.Table:
    """The local executor's run records (`<state>/pipelines/runs/*/run.json`): status, the gate's
    outcome (its condition step's branch) and the failure reason."""
    rows = []
    for path in sorted((state_dir / "pipelines" / "runs").glob("*/run.json")):
        try:
            run = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        gates = [s for s in run.get("steps", []) if s.get("type") == "Condition"]
        gate = ", ".join(f"{s['name']}: {s.get('outcome') or s.get('status')}" for s in gates) or None
        rows.append(
            {"pipeline_name": run.get("pipeline_name"), "execution_id": run.get("execution_id"),
             "status": run.get("status"), "started_at": _naive(run.get("started_at")),
             "ended_at": _naive(run.get("ended_at")), "gate": gate,
             "failure_reason": _short(run.get("failure_reason"))}
        )  # fmt: skip
    return _table(PIPELINE_RUNS, rows)


def drift_reports(reports_root: Path) -> pa.Table:
    """The drift reports under `<home>/monitoring/reports/<model>/<stamp>/`."""
    rows = []
    for path in sorted(reports_root.glob("*/*/report.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        created = _naive(doc.get("created_at")) or _naive(datetime.fromtimestamp(path.stat().st_mtime, UTC))
        rows.append(
            {"model_name": path.parent.parent.name, "created_at": created,
             "share_drifted": doc.get("share_drifted"), "html_path": str(path.with_name("report.html"))}
        )  # fmt: skip
    return _table(DRIFT_REPORTS, rows)


def refresh_model_health(
    backends: Backends, models: Sequence[str] = tuple(PIPELINES), now: datetime | None = None
) -> dict[str, int]:
    """Rebuild every model-health table; rows per table."""
    now = now or datetime.now(UTC)
    s = backends.settings
    tables = {
        **registry_tables(backends, models),
        MONITOR_METRICS: monitor_metrics(backends, models, now),
        ALARM_HISTORY: alarm_history(backends, models, now),
        PIPELINE_RUNS: pipeline_runs(s.state_dir),
        DRIFT_REPORTS: drift_reports(s.home / "monitoring" / "reports"),
    }
    return {name: write_snapshot(backends, name, rows) for name, rows in tables.items()}
