"""Contract of the metrics port, run against the local SQLite store and CloudWatch (moto)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from cdp.metrics import MetricDatum, MetricQuery, MetricsStore, Statistic
from cdp.metrics.cloudwatch import CloudWatchMetricsStore
from cdp.metrics.local import SqliteMetricsStore
from cdp.metrics.port import MetricsError
from tests.contract.moto_env import REGION, use_fake_aws_credentials

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
NS = "CDP/Monitoring"
DIMS = {"model": "fraud"}


@dataclass
class Harness:
    metrics: MetricsStore
    reopen: Callable[[], MetricsStore]


@pytest.fixture(params=["local", "cloudwatch"])
def harness(request: pytest.FixtureRequest, tmp_path, monkeypatch) -> Iterator[Harness]:
    if request.param == "local":
        path = tmp_path / "metrics.sqlite"
        store = SqliteMetricsStore(path)
        yield Harness(store, lambda: SqliteMetricsStore(path))
        store.close()
        return
    use_fake_aws_credentials(monkeypatch)
    with mock_aws():
        client = boto3.client("cloudwatch", region_name=REGION)
        yield Harness(CloudWatchMetricsStore(client), lambda: CloudWatchMetricsStore(client))


@pytest.fixture
def metrics(harness: Harness) -> MetricsStore:
    return harness.metrics


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


def test_another_store_reads_what_was_put(harness: Harness) -> None:
    harness.metrics.put_metric_data([datum(4, 0)])
    points = harness.reopen().get_statistics(
        MetricQuery(NS, "psi", dimensions=DIMS), T0, T0 + timedelta(minutes=5)
    )
    assert [p.value for p in points] == [4.0]


def test_dimension_sets_match_in_any_order(metrics: MetricsStore) -> None:
    metrics.put_metric_data([datum(1, 0, {"model": "fraud", "stage": "Production"})])
    metrics.put_metric_data([datum(2, 0, {"stage": "Production", "model": "fraud"}), datum(40, 0)])
    query = MetricQuery(NS, "psi", Statistic.SUM, 60, {"stage": "Production", "model": "fraud"})
    points = metrics.get_statistics(query, T0, T0 + timedelta(minutes=1))
    assert [p.value for p in points] == [3.0]


def test_a_query_without_dimensions_reads_only_the_series_without_dimensions(
    metrics: MetricsStore, request: pytest.FixtureRequest
) -> None:
    if isinstance(metrics, CloudWatchMetricsStore):
        # CloudWatch matches the exact dimension set; moto 5 sums every series of the name instead.
        # Strict: flags a fixed moto.
        request.applymarker(pytest.mark.xfail(strict=True, reason="moto ignores the missing dimensions"))
    metrics.put_metric_data([datum(40, 0), datum(80, 0, {})])
    points = metrics.get_statistics(MetricQuery(NS, "psi", Statistic.SUM, 60), T0, T0 + timedelta(minutes=1))
    assert [p.value for p in points] == [80.0]


def test_points_come_back_oldest_first_whatever_the_put_order(metrics: MetricsStore) -> None:
    metrics.put_metric_data([datum(3, 2), datum(1, 0)])
    metrics.put_metric_data([datum(2, 1)])
    points = metrics.get_statistics(
        MetricQuery(NS, "psi", Statistic.MAXIMUM, 60, DIMS), T0, T0 + timedelta(minutes=3)
    )
    assert [(p.timestamp, p.value) for p in points] == [
        (T0 + timedelta(minutes=m), float(m + 1)) for m in range(3)
    ]
    assert all(p.timestamp.utcoffset() == timedelta(0) for p in points)


def test_naive_times_are_read_as_utc(metrics: MetricsStore) -> None:
    naive = T0.replace(tzinfo=None)
    metrics.put_metric_data([MetricDatum(NS, "psi", 5.0, naive + timedelta(minutes=1), DIMS)])
    points = metrics.get_statistics(
        MetricQuery(NS, "psi", Statistic.SUM, 300, DIMS), naive, naive + timedelta(minutes=5)
    )
    assert [(p.timestamp, p.value) for p in points] == [(T0, 5.0)]


def test_hourly_periods_over_a_day(metrics: MetricsStore) -> None:
    metrics.put_metric_data([datum(float(h % 5), 60 * h + 7) for h in range(0, 24, 3)])
    points = metrics.get_statistics(
        MetricQuery(NS, "psi", Statistic.AVERAGE, 3600, DIMS), T0, T0 + timedelta(days=1)
    )
    assert [p.timestamp for p in points] == [T0 + timedelta(hours=h) for h in range(0, 24, 3)]
    assert [p.value for p in points] == [float(h % 5) for h in range(0, 24, 3)]
