"""Service-level objectives: the stream handler and the API publish their indicators, the monitor measures
freshness, the SLO alarms fire on a sustained breach, and `cdp monitor slo` prints each objective's target,
current value and error budget left."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cdp.backends import Backends
from cdp.events.patterns import matches
from cdp.metrics.local import SqliteMetricsStore
from cdp.metrics.port import MetricDatum, MetricQuery, Statistic
from cdp.settings import Settings, get_settings
from cdp.streaming import records
from inference.access_log import AccessLogMiddleware
from inference.app import create_app
from inference.config import ServingConfig
from inference.slo_metrics import (
    API_ERROR_RATE,
    API_LATENCY_P99,
    API_REQUESTS,
    API_REQUESTS_OVER_OBJECTIVE,
    API_SERVER_ERRORS,
    EVENT_TO_ALERT_MAX,
    EVENT_TO_ALERT_P99,
    MAX_PENDING_CALLS,
    SLO_NAMESPACE,
    STREAM_EVENTS,
    STREAM_EVENTS_OVER_OBJECTIVE,
    ApiMeter,
    EventLatencyMeter,
    percentile,
)
from monitoring.rules import PIPELINES, SLO_ALARM_PREFIX, retrain_on_drift_pattern, slo_alarms
from monitoring.slo import Objectives, check_slos
from tests.cli_support import cdp  # noqa: F401 - fixture
from tests.test_stream_handler import backends, champion, event_of, handler, transactions  # noqa: F401

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def total(metrics, name: str, stat: Statistic = Statistic.SUM, start: datetime | None = None) -> float | None:
    start = start or datetime(2000, 1, 1, tzinfo=UTC)
    points = metrics.get_statistics(
        MetricQuery(SLO_NAMESPACE, name, stat, 86_400 * 365), start, datetime(2100, 1, 1, tzinfo=UTC)
    )
    if not points:
        return None
    return sum(p.value for p in points) if stat is Statistic.SUM else points[0].value


# -- indicators ------------------------------------------------------------------------------------------
def test_event_latency_meter_counts_events_over_the_objective(tmp_path):
    metrics = SqliteMetricsStore(tmp_path / "m.sqlite")
    wall = NOW.timestamp()
    meter = EventLatencyMeter(lambda: metrics, objective_seconds=5.0, wall_clock=lambda: wall)
    latencies = meter.landed([wall - 1, wall - 2.5, wall - 12, None])
    assert latencies == [1.0, 2.5, 12.0]  # an event of unknown arrival is not measured
    assert total(metrics, STREAM_EVENTS) == 3 and total(metrics, STREAM_EVENTS_OVER_OBJECTIVE) == 1
    assert total(metrics, EVENT_TO_ALERT_P99, Statistic.MAXIMUM) == 12.0
    assert total(metrics, EVENT_TO_ALERT_MAX, Statistic.MAXIMUM) == 12.0
    assert meter.landed([None]) == [] and total(metrics, STREAM_EVENTS) == 3  # nothing to publish


def test_a_failing_metrics_store_never_fails_what_is_measured(caplog):
    def broken():  # noqa: ANN202
        raise OSError("disk full")

    EventLatencyMeter(broken, 5.0).landed([time.time()])
    api = ApiMeter(broken, 300.0, flush_seconds=0)
    api.record(200, 3.0)
    assert "publishing" in caplog.text and "OSError" in caplog.text and "disk full" not in caplog.text


def test_the_stream_handler_publishes_event_to_alert_latency(handler, backends, champion):  # noqa: F811
    rows = transactions(champion, 6)
    event = event_of([records.encode(r) for r in rows])
    arrived = time.time() - 2.0
    for record in event["Records"]:
        record["kinesis"]["approximateArrivalTimestamp"] = arrived
    handler(event, None)
    metrics = backends.metrics
    assert total(metrics, STREAM_EVENTS) == 6 and total(metrics, STREAM_EVENTS_OVER_OBJECTIVE) == 0
    assert 2.0 <= total(metrics, EVENT_TO_ALERT_P99, Statistic.MAXIMUM) < 60
    handler(event, None)  # a re-delivery decides nothing new: no events counted twice
    assert total(metrics, STREAM_EVENTS) == 6


def test_the_api_meter_counts_calls_errors_and_slow_calls(tmp_path):
    metrics = SqliteMetricsStore(tmp_path / "m.sqlite")
    meter = ApiMeter(lambda: metrics, objective_ms=50.0, flush_seconds=3600)
    app = FastAPI()

    @app.get("/ok")
    def ok() -> dict:
        return {}

    @app.get("/slow")
    def slow() -> dict:
        time.sleep(0.08)
        return {}

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("boom")

    app.add_middleware(AccessLogMiddleware, meter=meter)
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/ok", "/ok", "/slow", "/boom"):
            client.get(path)
    assert total(metrics, API_REQUESTS) is None  # nothing published before the interval ends
    meter.flush()
    assert total(metrics, API_REQUESTS) == 4 and total(metrics, API_SERVER_ERRORS) == 1
    assert total(metrics, API_REQUESTS_OVER_OBJECTIVE) == 1
    assert total(metrics, API_ERROR_RATE, Statistic.AVERAGE) == 0.25
    assert total(metrics, API_LATENCY_P99, Statistic.MAXIMUM) >= 80.0
    meter.flush()  # no call since: nothing more
    assert total(metrics, API_REQUESTS) == 4


def test_the_api_meter_memory_is_bounded(tmp_path):
    metrics = SqliteMetricsStore(tmp_path / "m.sqlite")
    meter = ApiMeter(lambda: metrics, objective_ms=50.0, flush_seconds=3600)
    for _ in range(MAX_PENDING_CALLS + 5):
        meter.record(200, 1.0)
    assert total(metrics, API_REQUESTS) == MAX_PENDING_CALLS  # flushed early, at the bound
    assert len(meter._latencies) == 5


def test_the_serving_app_publishes_its_indicators_at_shutdown(tmp_path):
    b = Backends(Settings(home=tmp_path / "home"))
    app = create_app(backends=b, config=ServingConfig.from_settings(b.settings, reload_seconds=0.0))
    with TestClient(app) as client:
        assert client.get("/ping").status_code == 503  # no champion: the service is unavailable
        assert client.get("/v1/models").status_code == 401  # refused without a key: not a server error
    assert total(b.metrics, API_REQUESTS) == 2 and total(b.metrics, API_SERVER_ERRORS) == 1


def test_percentile_is_nearest_rank():
    assert percentile([5.0], 99) == 5.0
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile(list(range(1, 1001)), 99) == 990


# -- objectives, budgets and alarms ----------------------------------------------------------------------
def _put(b: Backends, name: str, value: float, at: datetime) -> None:
    b.metrics.put_metric_data([MetricDatum(SLO_NAMESPACE, name, value, at)])


def _land(b: Backends, table: str, at: datetime) -> None:
    uri = f"s3://{b.settings.lake_bucket}/{table}/year=2019/month=10/part-0.parquet"
    b.object_store.put_bytes(uri, b"PAR1")
    path = b.object_store.local_path(uri)
    os.utime(path, (at.timestamp(), at.timestamp()))


def test_budgets_alarms_and_freshness(isolated_home):
    b = Backends()
    earlier = NOW - timedelta(days=2)
    _put(b, STREAM_EVENTS, 1000, earlier)
    _put(b, STREAM_EVENTS_OVER_OBJECTIVE, 5, earlier)  # 0.5% late of a 1% budget: half left
    _put(b, API_REQUESTS, 10_000, earlier)
    _put(b, API_SERVER_ERRORS, 20, earlier)  # 0.2% errors of a 0.1% budget: overspent twice
    _put(b, API_REQUESTS_OVER_OBJECTIVE, 50, earlier)
    for minutes in (0, 5, 10):  # a sustained 5% error rate in the last three periods: fast burn
        _put(b, API_ERROR_RATE, 0.05, NOW - timedelta(minutes=minutes))
    _put(b, API_LATENCY_P99, 120.0, NOW - timedelta(minutes=20))
    _land(b, "transactions", NOW - timedelta(hours=2))
    _land(b, "transactions_scored", NOW - timedelta(hours=1))  # the stream stopped an hour ago
    statuses = {s.name: s for s in check_slos(b, Objectives(), now=NOW)}

    latency = statuses["event-to-alert latency"]
    assert (latency.good, latency.total, latency.budget_left) == (995, 1000, pytest.approx(0.5))
    availability = statuses["API availability"]
    assert availability.sli == pytest.approx(0.998) and availability.budget_left == pytest.approx(-1.0)
    assert availability.alarm == "ALARM"
    p99 = statuses["API latency p99"]
    assert p99.budget_left == pytest.approx(0.5) and p99.current == "p99 120.0 ms (last hour)"
    assert p99.alarm == "OK"
    batch, stream = statuses["batch freshness"], statuses["stream freshness"]
    assert (
        batch.current == "2.0 h old" and batch.alarm == "OK" and batch.notes["newest_partition"] == "2019-10"
    )
    assert (batch.good, batch.total) == (1, 1)
    assert stream.current == "1.0 h old" and stream.alarm == "ALARM" and (stream.good, stream.total) == (0, 1)
    assert latency.alarm == "OK"  # no event in the last periods: not breaching


def test_with_no_data_there_is_no_budget_to_report(isolated_home):
    statuses = check_slos(Backends(), Objectives(), now=NOW)
    assert [s.name for s in statuses] == [
        "event-to-alert latency", "API availability", "API latency p99", "batch freshness", "stream freshness"
    ]  # fmt: skip
    assert all(s.sli is None and s.budget_left is None for s in statuses)
    assert statuses[3].current == "no data landed"


def test_slo_alarms_never_start_a_retraining():
    alarms = slo_alarms()
    assert all(a.name.startswith(SLO_ALARM_PREFIX) for a in alarms)
    pattern = retrain_on_drift_pattern()
    for alarm in alarms:
        event = {
            "source": "aws.cloudwatch",
            "detail-type": "CloudWatch Alarm State Change",
            "detail": {"alarmName": alarm.name, "state": {"value": "ALARM"}},
        }
        assert not matches(pattern, event)
    assert PIPELINES  # the patterns above cover every model


def test_targets_are_settings(monkeypatch):
    monkeypatch.setenv("CDP_SLO_API_AVAILABILITY_TARGET", "0.995")
    monkeypatch.setenv("CDP_SLO_STREAM_FRESHNESS_MINUTES", "5")
    monkeypatch.setenv("CDP_SLO_WINDOW_DAYS", "7")
    get_settings.cache_clear()
    o = Objectives.from_settings(get_settings())
    assert (o.api_availability_target, o.stream_freshness_seconds, o.window_days) == (0.995, 300.0, 7)
    alarm = next(a for a in slo_alarms(o.thresholds()) if a.name == "cdp-slo-api-availability")
    assert alarm.threshold == pytest.approx(14.4 * 0.005)
    monkeypatch.setenv("CDP_SLO_API_AVAILABILITY_TARGET", "1.5")
    get_settings.cache_clear()
    with pytest.raises(ValueError):
        get_settings()


def test_cdp_monitor_slo_prints_each_objective(isolated_home, cdp):  # noqa: F811
    b = Backends()
    _put(b, STREAM_EVENTS, 200, datetime.now(UTC) - timedelta(hours=3))
    _put(b, STREAM_EVENTS_OVER_OBJECTIVE, 1, datetime.now(UTC) - timedelta(hours=3))
    shown = cdp(None, "monitor", "slo")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == "service-level objectives over the last 30 days:"
    assert lines[1].startswith("event-to-alert latency: decided within 5 s of arrival, target 99.0%;")
    assert lines[1].endswith("99.500% of 200 good, error budget left 50% (alarm OK)")
    assert lines[2].startswith("API availability:") and "no data" in lines[2]
    assert [line.split(":")[0] for line in lines[3:]] == [
        "API latency p99",
        "batch freshness",
        "stream freshness",
    ]
    as_json = cdp(None, "monitor", "slo", "--json", "--window-days", "7")
    assert as_json.exit_code == 0
    doc = {s["name"]: s for s in json.loads(as_json.stdout)}
    assert doc["event-to-alert latency"]["budget_left"] == pytest.approx(0.5)
    assert doc["event-to-alert latency"]["target"] == 0.99
