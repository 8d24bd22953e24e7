"""The metrics port (CloudWatch semantics) with a local SQLite store and a CloudWatch adapter."""

from cdp.metrics.port import Datapoint, MetricDatum, MetricQuery, MetricsStore, Statistic

__all__ = ["Datapoint", "MetricDatum", "MetricQuery", "MetricsStore", "Statistic"]
