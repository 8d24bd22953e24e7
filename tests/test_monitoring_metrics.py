"""Contract of the metrics port, run against the local SQLite store and CloudWatch (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from cdp.metrics import MetricDatum, MetricQuery, MetricsStore, Statistic
from cdp.metrics.cloudwatch import CloudWatchMetricsStore
from cdp.metrics.local import SqliteMetricsStore
from cdp.metrics.port import MetricsError

REGION = "eu-west-1"
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NS = "CDP/Monitoring"
DIMS = {"model": "fraud"}


@pytest.fixture(params=["local", "cloudwatch"])
def metrics(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[MetricsStore]:
    if request.param == "local":
        store = SqliteMetricsStore(tmp_path / "metrics.sqlite")
        yield store
        store.close()
        return
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield CloudWatchMetricsStore(boto3.client("cloudwatch", region_name=REGION))


def datum(value: float, minutes: float, dims: dict[str, str] = DIMS, name: str = "psi") -> MetricDatum:
    return MetricDatum(NS, name, value, T0 + timedelta(minutes=minutes), dims)


def test_adapter_satisfies_the_port(metrics: MetricsStore) -> None:
    assert isinstance(metrics, MetricsStore)


@pytest.mark.parametrize(
    ("statistic", "expected"),
    [
        (Statistic.AVERAGE, [2.0, 10.0]),
        (Statistic.SUM, [6.0, 10.0]),
        (Statistic.MAXIMUM, [3.0, 10.0]),
        (Statistic.MINIMUM, [1.0, 10.0]),
        (Statistic.SAMPLE_COUNT, [3.0, 1.0]),
    ],
)
def test_statistics_per_period_skip_empty_periods(
    metrics: MetricsStore, statistic: Statistic, expected: list[float]
) -> None:
    # periods of 5 minutes from T0: [1, 2, 3] in the first, nothing in the second, 10 in the third
    metrics.put_metric_data([datum(1, 0), datum(2, 1), datum(3, 4.5), datum(10, 11)])
    points = metrics.get_statistics(
        MetricQuery(NS, "psi", statistic, 300, DIMS), T0, T0 + timedelta(minutes=15)
    )
    assert [p.timestamp for p in points] == [T0, T0 + timedelta(minutes=10)]
    assert [p.value for p in points] == pytest.approx(expected)


def test_end_is_exclusive_and_series_are_kept_apart(metrics: MetricsStore) -> None:
    metrics.put_metric_data(
        [datum(1, 0), datum(50, 0, {"model": "clv"}), datum(70, 0, name="other"), datum(99, 5)]
    )
    points = metrics.get_statistics(
        MetricQuery(NS, "psi", Statistic.SUM, 60, DIMS), T0, T0 + timedelta(minutes=5)
    )
    assert [(p.timestamp, p.value) for p in points] == [(T0, 1.0)]


@pytest.mark.parametrize(
    "data",
    [
        [],
        [MetricDatum(NS, "psi", float("nan"), T0)],
        [MetricDatum(NS, "psi", float("inf"), T0)],
        [MetricDatum("", "psi", 1.0, T0)],
        [MetricDatum("AWS/EC2", "psi", 1.0, T0)],
        [MetricDatum(NS, "psi", 1.0, T0, {"model": ""})],
        [MetricDatum(NS, "psi", 1.0, T0)] * 1001,
    ],
)
def test_invalid_data_is_rejected(metrics: MetricsStore, data: list[MetricDatum]) -> None:
    with pytest.raises(MetricsError):
        metrics.put_metric_data(data)


def test_invalid_queries_are_rejected(metrics: MetricsStore) -> None:
    with pytest.raises(MetricsError, match="period"):
        metrics.get_statistics(MetricQuery(NS, "psi", period_seconds=90), T0, T0 + timedelta(hours=1))
    with pytest.raises(MetricsError, match="after start"):
        metrics.get_statistics(MetricQuery(NS, "psi"), T0, T0)


def test_local_store_is_durable(tmp_path) -> None:
    store = SqliteMetricsStore(tmp_path / "m.sqlite")
    store.put_metric_data([datum(4, 0)])
    store.close()
    reopened = SqliteMetricsStore(tmp_path / "m.sqlite")
    points = reopened.get_statistics(MetricQuery(NS, "psi", dimensions=DIMS), T0, T0 + timedelta(minutes=5))
    assert [p.value for p in points] == [4.0]
