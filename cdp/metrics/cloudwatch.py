"""AWS adapter of the metrics port: CloudWatch PutMetricData and GetMetricData."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from cdp.metrics.port import (
    Datapoint,
    MetricDatum,
    MetricQuery,
    Statistic,
    as_utc,
    validate_data,
    validate_query,
)

if TYPE_CHECKING:
    from cdp.settings import Settings


def _dimensions(dimensions: dict[str, str] | Any) -> list[dict[str, str]]:
    return [{"Name": name, "Value": dimensions[name]} for name in sorted(dimensions)]


class CloudWatchMetricsStore:
    """The metrics port over CloudWatch (`client` is a boto3 CloudWatch client)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> CloudWatchMetricsStore:
        from cdp.aws_clients import aws_client

        return cls(aws_client(settings, "cloudwatch"))

    def put_metric_data(self, data: list[MetricDatum]) -> None:
        validate_data(data)
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for datum in data:
            by_namespace.setdefault(datum.namespace, []).append(
                {
                    "MetricName": datum.name,
                    "Dimensions": _dimensions(datum.dimensions),
                    "Timestamp": as_utc(datum.timestamp),
                    "Value": float(datum.value),
                    "Unit": datum.unit,
                }
            )
        for namespace, entries in by_namespace.items():
            self._client.put_metric_data(Namespace=namespace, MetricData=entries)

    def get_statistics(self, query: MetricQuery, start: datetime, end: datetime) -> list[Datapoint]:
        validate_query(query, start, end)
        request: dict[str, Any] = {
            "MetricDataQueries": [
                {
                    "Id": "m0",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": query.namespace,
                            "MetricName": query.name,
                            "Dimensions": _dimensions(query.dimensions),
                        },
                        "Period": query.period_seconds,
                        "Stat": Statistic(query.statistic).value,
                    },
                    "ReturnData": True,
                }
            ],
            "StartTime": as_utc(start),
            "EndTime": as_utc(end),
            "ScanBy": "TimestampAscending",
        }
        points: dict[datetime, float] = {}
        while True:
            response = self._client.get_metric_data(**request)
            for result in response["MetricDataResults"]:
                for timestamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                    moment = as_utc(timestamp)
                    if as_utc(start) <= moment < as_utc(end):
                        points[moment] = float(value)
            token = response.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
        return [Datapoint(moment, points[moment]) for moment in sorted(points)]
