"""Fairness of a candidate on the holdout, by gender and age band, and the gates it gives.

Measured (each group's figure divided by the overall figure, the "ratio"):
- fraud: the alert rate (share of rows in the alert budget) and the false-positive rate (share of genuine
  rows alerted);
- CLV: the error, as the model's MAE over the last-12-months heuristic's MAE on the group's customers (the
  primary metric, so a group the model serves worse than it serves everyone stands out whatever its
  spend level);
- segmentation: composition, each group's share of a segment over its share of all customers.

A group is judged only with at least `min_group_customers` customers (smaller groups are counted, their
figures not shown). It fails when the interval of its ratio at `confidence` lies wholly outside
[min_ratio, max_ratio] (the four-fifths rule by default): a group is not failed on the noise of a small
holdout, and a model that treats a group differently is failed as soon as the holdout shows it. The
intervals resample customers, not rows (a seeded bootstrap): a customer's transactions are not
independent (a fraud episode is a burst of alerts on one card), so row-level intervals would be too
narrow. Segment shares, whose rows are customers, use Wilson's interval. A point ratio outside the
limits with an interval that still reaches them is reported as "uncertain". Segment composition is
gated only when the policy says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from monitoring.promotion.decision import GateResult
from monitoring.promotion.groups import ATTRIBUTES, UNKNOWN

WITHIN, OUTSIDE, UNCERTAIN, TOO_FEW = "within", "outside", "uncertain", "too few to judge"
BOOTSTRAP_SAMPLES = 200
SEED = 7


@dataclass(frozen=True)
class FairnessLimits:
    """The fairness part of the promotion policy."""

    max_ratio: float = 1.25
    min_ratio: float = 0.8
    confidence: float = 0.95
    min_group_customers: int = 30
    gate_segments: bool = False

    @property
    def z(self) -> float:
        from statistics import NormalDist

        return NormalDist().inv_cdf(0.5 + self.confidence / 2.0)


def wilson(successes: int, trials: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    denominator = 1 + z * z / trials
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def _status(ratio: float, low: float, high: float, limits: FairnessLimits) -> str:
    if low > limits.max_ratio or high < limits.min_ratio:
        return OUTSIDE
    if limits.min_ratio <= ratio <= limits.max_ratio:
        return WITHIN
    return UNCERTAIN


def _figure(rows: int, value: float, overall: float, interval: tuple[float, float], limits: FairnessLimits):
    if overall <= 0 or not math.isfinite(overall):
        return {"rows": rows, "status": TOO_FEW}
    ratio = value / overall
    low, high = interval[0] / overall, interval[1] / overall
    return {
        "rows": rows,
        "value": value,
        "ratio": ratio,
        "interval": [low, high],
        "status": _status(ratio, low, high, limits),
    }


def _clustered_rate(
    flags: np.ndarray, customers: np.ndarray, rng: np.random.Generator, tail: float
) -> tuple[float, tuple[float, float], int]:
    """The share of flagged rows, its bootstrap interval over customers, and the number of customers."""
    per = pd.DataFrame({"c": customers, "f": flags.astype(np.int64)}).groupby("c", sort=True)["f"]
    rows, hits = per.size().to_numpy(np.float64), per.sum().to_numpy(np.float64)
    value = float(hits.sum() / rows.sum())
    draws = rng.integers(0, len(rows), (BOOTSTRAP_SAMPLES, len(rows)))
    rates = hits[draws].sum(axis=1) / rows[draws].sum(axis=1)
    return value, (float(np.quantile(rates, tail)), float(np.quantile(rates, 1 - tail))), len(rows)


def rate_by_group(
    flags: np.ndarray,
    groups: pd.DataFrame,
    customers: np.ndarray,
    mask: np.ndarray | None,
    limits: FairnessLimits,
) -> dict[str, Any]:
    """A rate (share of `flags` among the rows in `mask`) per group of each attribute, against overall;
    intervals by resampling each group's customers."""
    chosen = np.ones(len(flags), dtype=bool) if mask is None else mask
    overall = float(flags[chosen].mean()) if chosen.any() else 0.0
    rng = np.random.default_rng(SEED)
    tail = (1 - limits.confidence) / 2
    out: dict[str, dict[str, Any]] = {}
    for attribute in ATTRIBUTES:
        members: dict[str, Any] = {}
        labels = groups[attribute].to_numpy()
        for group in sorted(set(labels[chosen]) - {UNKNOWN}):
            rows = chosen & (labels == group)
            people = int(len(np.unique(customers[rows])))
            if people < limits.min_group_customers:
                members[str(group)] = {"customers": people, "status": TOO_FEW}
                continue
            value, interval, _ = _clustered_rate(flags[rows], customers[rows], rng, tail)
            figure = _figure(int(rows.sum()), value, overall, interval, limits)
            members[str(group)] = {"customers": people, **figure}
        out[attribute] = members
    return {"overall": overall, "groups": out}


def _verdict(result: dict[str, Any], gated: bool = True) -> dict[str, Any]:
    statuses = [g["status"] for members in result["groups"].values() for g in members.values()]
    judged = [s for s in statuses if s != TOO_FEW]
    if not judged:
        verdict = "not judged: no group large enough"
    elif OUTSIDE in judged:
        verdict = "outside the limits" + ("" if gated else " (reported, not gated)")
    elif UNCERTAIN in judged:
        verdict = "within the limits at the chosen confidence (some groups uncertain)"
    else:
        verdict = "within the limits"
    return {**result, "verdict": verdict}


def gate_of(result: dict[str, Any], limits: FairnessLimits) -> GateResult:
    """Failed when a judged group's ratio is confidently outside the limits; the value is the ratio
    furthest from 1 among the failing groups (else among all judged groups), held to the limit it faces."""
    figures = [g for members in result["groups"].values() for g in members.values() if "ratio" in g]
    failing = [g for g in figures if g["status"] == OUTSIDE]
    pool = failing or figures
    if not pool:
        return GateResult(True, None, limits.max_ratio, "<=")
    worst = max(pool, key=lambda g: abs(math.log(max(g["ratio"], 1e-12))))["ratio"]
    if worst >= 1.0:
        return GateResult(not failing, worst, limits.max_ratio, "<=")
    return GateResult(not failing, worst, limits.min_ratio, ">=")


# -- per model ---------------------------------------------------------------------------------------------


def fraud_fairness(
    labels: np.ndarray,
    scores: np.ndarray,
    groups: pd.DataFrame,
    customers: np.ndarray,
    budget: float,
    limits: FairnessLimits,
) -> dict[str, dict[str, Any]]:
    """Alert rate and false-positive rate by group, alerts being the top `budget` share by score;
    `customers` holds each row's customer token (the unit the intervals resample)."""
    k = max(1, math.ceil(len(scores) * budget))
    alerts = np.zeros(len(scores), dtype=bool)
    alerts[np.argsort(-np.asarray(scores), kind="stable")[:k]] = True
    genuine = np.asarray(labels) == 0
    people = np.asarray(customers)
    return {
        "fraud_alert_rate": _verdict(rate_by_group(alerts, groups, people, None, limits)),
        "fraud_false_positive_rate": _verdict(rate_by_group(alerts, groups, people, genuine, limits)),
    }


def _error_ratio(truth: np.ndarray, predicted: np.ndarray, heuristic: np.ndarray) -> float:
    base = float(np.mean(np.abs(heuristic - truth)))
    return float(np.mean(np.abs(predicted - truth))) / base if base > 0 else float("inf")


def clv_fairness(
    truth: np.ndarray,
    predicted: np.ndarray,
    heuristic: np.ndarray,
    groups: pd.DataFrame,
    limits: FairnessLimits,
) -> dict[str, dict[str, Any]]:
    """The error (MAE over the heuristic's MAE) of each group against everyone's, bootstrap intervals."""
    overall = _error_ratio(truth, predicted, heuristic)
    rng = np.random.default_rng(SEED)
    tail = (1 - limits.confidence) / 2
    out: dict[str, dict[str, Any]] = {}
    for attribute in ATTRIBUTES:
        members: dict[str, Any] = {}
        labels = groups[attribute].to_numpy()
        for group in sorted(set(labels) - {UNKNOWN}):
            rows = np.flatnonzero(labels == group)
            if len(rows) < limits.min_group_customers:
                members[str(group)] = {"customers": int(len(rows)), "status": TOO_FEW}
                continue
            value = _error_ratio(truth[rows], predicted[rows], heuristic[rows])  # a row is a customer
            draws = [
                _error_ratio(truth[s], predicted[s], heuristic[s])
                for s in (rng.choice(rows, len(rows)) for _ in range(BOOTSTRAP_SAMPLES))
            ]
            finite = [d for d in draws if math.isfinite(d)]
            interval = (
                (float(np.quantile(finite, tail)), float(np.quantile(finite, 1 - tail))) if finite else (0, 0)
            )
            figure = _figure(int(len(rows)), value, overall, interval, limits)
            members[str(group)] = {"customers": int(len(rows)), **figure}
        out[attribute] = members
    return {"clv_error": _verdict({"overall": overall, "groups": out})}


def segment_fairness(
    segments: np.ndarray, groups: pd.DataFrame, limits: FairnessLimits, names: Callable[[int], str] = str
) -> dict[str, dict[str, Any]]:
    """Each group's share of each segment over its share of all customers."""
    out: dict[str, dict[str, Any]] = {}
    for attribute in ATTRIBUTES:
        labels = groups[attribute].to_numpy()
        known = labels != UNKNOWN
        for group in sorted(set(labels[known])):
            overall = float((labels[known] == group).mean())
            members: dict[str, Any] = {}
            for segment in sorted(set(segments.tolist())):
                rows = known & (segments == segment)
                n, hits = int(rows.sum()), int((labels[rows] == group).sum())
                if n < limits.min_group_customers:
                    members[names(segment)] = {"customers": n, "status": TOO_FEW}
                    continue
                figure = _figure(n, hits / n, overall, wilson(hits, n, limits.z), limits)
                members[names(segment)] = {"customers": n, **figure}
            out[f"{attribute}={group}"] = members
    return {"segment_composition": _verdict({"groups": out}, gated=limits.gate_segments)}


def protected_inputs_gate(features: tuple[str, ...]) -> tuple[GateResult, list[str]]:
    """Fails when a protected attribute is among the model's inputs (`cdp.security.protected_attributes`)."""
    from cdp.security.protected_attributes import protected_inputs

    found = protected_inputs(features)
    return GateResult(not found, float(len(found)), 0.0, "<="), found
