"""Delayed-label performance: how the scores served did, once the fraud labels are in.

Scored transactions (`transactions_scored`) carry the label `is_fraud` once it is known. Windows are
calendar months of event time. A month whose rows hold no fraud label at all is skipped, not scored as
"no fraud": in this data whole months have their labels missing (see the data notes), and a month with
zero positives cannot give a PR-AUC anyway. For each labelled month: PR-AUC (average precision) of the
logged fraud probability, recall at the alert budget (the top `budget` share of scores), and recall of
the alerts actually raised. The pooled figure over every labelled month of the lookback is the one
published as `LabelledPrAuc`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from cdp.backends import Backends

SCORED_TABLE = "transactions_scored"
ALERT_BUDGET = 0.005  # share of transactions the fraud team can review (as in the fraud evaluation)


@dataclass(frozen=True)
class WindowPerformance:
    window: str  # "YYYY-MM", or "pooled"
    rows: int
    frauds: int
    pr_auc: float
    recall_at_budget: float
    alerts: int
    alert_recall: float


@dataclass(frozen=True)
class SkippedWindow:
    window: str
    rows: int
    reason: str


@dataclass(frozen=True)
class PerformanceResult:
    model: str
    alert_budget: float
    windows: list[WindowPerformance] = field(default_factory=list)
    skipped: list[SkippedWindow] = field(default_factory=list)
    pooled: WindowPerformance | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (the step-wise area under the precision-recall curve), scores ranked high first."""
    positives = int(labels.sum())
    if positives == 0:
        raise ValueError("average precision needs at least one positive label")
    order = np.argsort(-scores, kind="stable")
    hits = labels[order].astype(float)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / positives)


def window_performance(
    window: str, labels: np.ndarray, scores: np.ndarray, alerts: np.ndarray, budget: float = ALERT_BUDGET
) -> WindowPerformance:
    """The metrics of one labelled window (at least one positive label)."""
    labels = labels.astype(bool)
    frauds = int(labels.sum())
    top = max(1, math.ceil(budget * len(scores)))
    chosen = np.argsort(-scores, kind="stable")[:top]
    return WindowPerformance(
        window=window,
        rows=len(labels),
        frauds=frauds,
        pr_auc=average_precision(labels, scores),
        recall_at_budget=float(labels[chosen].sum() / frauds),
        alerts=int(alerts.sum()),
        alert_recall=float((labels & alerts.astype(bool)).sum() / frauds),
    )


def performance_of(frame: pd.DataFrame, model_name: str, budget: float = ALERT_BUDGET) -> PerformanceResult:
    """Per-month and pooled performance of rows with `ts`, `fraud_probability`, `is_fraud`, `is_alert`."""
    months = pd.to_datetime(frame["ts"]).dt.strftime("%Y-%m")
    windows, skipped = [], []
    labelled_parts = []
    for month, rows in frame.groupby(months, sort=True):
        labels = rows["is_fraud"]
        if labels.isna().all():
            skipped.append(SkippedWindow(str(month), len(rows), "labels not in (no label on any row)"))
            continue
        if not labels.fillna(False).astype(bool).any():
            skipped.append(
                SkippedWindow(str(month), len(rows), "labels not in (no fraud label in the month)")
            )
            continue
        labelled_parts.append(rows)
        windows.append(_perf(str(month), rows, budget))
    pooled = _perf("pooled", pd.concat(labelled_parts), budget) if labelled_parts else None
    return PerformanceResult(model_name, budget, windows, skipped, pooled)


def _perf(window: str, rows: pd.DataFrame, budget: float) -> WindowPerformance:
    return window_performance(
        window,
        rows["is_fraud"].fillna(False).to_numpy(bool),
        rows["fraud_probability"].to_numpy(float),
        rows["is_alert"].fillna(False).to_numpy(bool),
        budget,
    )


def labelled_performance(
    backends: Backends,
    model_name: str = "cdp-fraud",
    *,
    lookback_months: int = 12,
    budget: float = ALERT_BUDGET,
    version: int | None = None,
) -> PerformanceResult:
    """Performance of `model_name`'s scores over the `lookback_months` months up to its newest event
    (only the scores of `version` when given: how the champion in place is doing)."""
    if not any(t.name == SCORED_TABLE for t in backends.catalog.tables()):
        return PerformanceResult(model_name, budget)
    model = model_name.replace("'", "")
    scope = f"model = '{model}'" + (f" AND model_version = {int(version)}" if version is not None else "")
    frame = backends.catalog.query(
        "WITH newest AS (SELECT max(year * 12 + month - 1) AS m "
        f"FROM {SCORED_TABLE} WHERE {scope}) "
        f"SELECT ts, fraud_probability, is_fraud, is_alert FROM {SCORED_TABLE}, newest "
        f"WHERE {scope} AND year * 12 + month - 1 > newest.m - {int(lookback_months)} ORDER BY ts"
    ).to_pandas()
    if frame.empty:
        return PerformanceResult(model_name, budget)
    return performance_of(frame, model_name, budget)
