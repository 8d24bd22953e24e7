"""Figures of a scored, labelled set: the training evaluation's and the promotion gate's own metric functions,
plus fraud episodes and confidence intervals by bootstrap over episodes.

An episode is a burst of frauds on one card: the card's fraud rows in time order, a new episode starting when
the gap to the previous fraud exceeds `gap_hours`. An episode is detected when one of its frauds is alerted;
its first alerted fraud tells how many frauds got through before it. Frauds come in episodes, so rows are
not independent draws: confidence intervals resample whole episodes (with replacement), keeping every
genuine row, and recompute each figure (percentile intervals).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from monitoring.promotion.scoring import brier_score, expected_calibration_error
from training.fraud.evaluate import alert_count, calibration_bins, top_k_mask

ConfidenceInterval = tuple[float, float]


class EvaluationInputError(ValueError):
    """The scored rows cannot be evaluated (no labels, one class only); one line, no values."""


def episodes(card_tokens: np.ndarray, ts: np.ndarray, labels: np.ndarray, gap_hours: float) -> np.ndarray:
    """Episode number of every row (-1 for genuine rows): frauds of one card closer than `gap_hours` in time
    to the card's previous fraud belong to its episode."""
    out = np.full(len(labels), -1, dtype=np.int64)
    fraud = np.flatnonzero(labels)
    if fraud.size == 0:
        return out
    seconds = ts[fraud].astype("datetime64[s]").astype(np.int64)
    cards = card_tokens[fraud]
    order = np.lexsort((seconds, cards))
    c, s = cards[order], seconds[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (s[1:] - s[:-1] > gap_hours * 3600)
    out[fraud[order]] = np.cumsum(new) - 1
    return out


def episode_detection(episode: np.ndarray, ts: np.ndarray, alerts: np.ndarray) -> dict[str, float]:
    """Share of episodes with an alerted fraud, and frauds let through before the first alert (mean over
    detected episodes)."""
    mask = episode >= 0
    if not mask.any():
        return {"episodes": 0.0, "episodes_detected": 0.0, "episode_detection_rate": float("nan"),
                "frauds_before_first_alert": float("nan")}  # fmt: skip
    frame = pd.DataFrame({"episode": episode[mask], "ts": ts[mask], "alert": alerts[mask]})
    frame = frame.sort_values(["episode", "ts"], kind="stable")
    frame["position"] = frame.groupby("episode").cumcount()
    first = frame[frame["alert"]].groupby("episode")["position"].min()
    total = frame["episode"].nunique()
    return {
        "episodes": float(total),
        "episodes_detected": float(len(first)),
        "episode_detection_rate": len(first) / total,
        "frauds_before_first_alert": float(first.mean()) if len(first) else float("nan"),
    }


def at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision and recall of the alerts `score >= threshold`."""
    alerts = scores >= threshold
    hits = int(labels[alerts].sum())
    positives = int(labels.sum())
    return {
        "threshold": float(threshold),
        "alerts": float(alerts.sum()),
        "precision": hits / int(alerts.sum()) if alerts.any() else float("nan"),
        "recall": hits / positives if positives else float("nan"),
    }


def at_budget(labels: np.ndarray, scores: np.ndarray, budget: float) -> dict[str, float]:
    """Precision and recall of the top `budget` share of rows (ties by row order, as training evaluates)."""
    k = alert_count(len(labels), budget)
    alerts = top_k_mask(scores, k)
    hits = int(labels[alerts].sum())
    positives = int(labels.sum())
    return {
        "budget": float(budget),
        "alerts": float(k),
        "threshold": float(scores[alerts].min()),
        "precision": hits / k,
        "recall": hits / positives if positives else float("nan"),
    }


def headline(labels: np.ndarray, scores: np.ndarray, threshold: float, budget: float) -> dict[str, float]:
    """Every point figure: PR-AUC, ROC-AUC, precision/recall at the threshold and the budget, Brier, ECE."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    both = 0 < int(labels.sum()) < len(labels)
    t, k = at_threshold(labels, scores, threshold), at_budget(labels, scores, budget)
    return {
        "pr_auc": float(average_precision_score(labels, scores)) if both else float("nan"),
        "roc_auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "precision_at_threshold": t["precision"],
        "recall_at_threshold": t["recall"],
        "precision_at_budget": k["precision"],
        "recall_at_budget": k["recall"],
        "brier": brier_score(labels, np.clip(scores, 0.0, 1.0)),
        "ece": expected_calibration_error(labels, scores),
    }


def reliability(labels: np.ndarray, scores: np.ndarray, bins: int = 12) -> list[dict[str, float]]:
    """Rows, mean score and observed fraud rate per log-spaced score bin (training's calibration bins)."""
    table = calibration_bins(labels, scores, bins)
    return [
        {"rows": int(r.rows), "mean_score": float(r.predicted), "fraud_rate": float(r.observed)}
        for r in table.itertuples()
    ]


def bootstrap_by_episode(
    labels: np.ndarray,
    episode: np.ndarray,
    figures: Callable[[np.ndarray], dict[str, float]],
    rounds: int,
    seed: int = 7,
    level: float = 0.95,
) -> dict[str, ConfidenceInterval]:
    """Percentile intervals of `figures(rows)` over resamples of the fraud episodes (all genuine rows kept,
    each drawn episode's rows repeated as often as drawn). `figures` takes row indexes."""
    ids = np.unique(episode[episode >= 0])
    if rounds <= 0 or ids.size < 2:
        return {}
    genuine = np.flatnonzero(labels == 0)
    by_episode = (
        pd.Series(np.arange(len(episode))[episode >= 0]).groupby(episode[episode >= 0]).apply(np.asarray)
    )
    members = [by_episode[i] for i in ids]
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(rounds):
        drawn = rng.integers(0, ids.size, ids.size)
        rows = np.concatenate([genuine, *(members[i] for i in drawn)])
        for name, value in figures(rows).items():
            samples.setdefault(name, []).append(value)
    low, high = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    out: dict[str, ConfidenceInterval] = {}
    for name, values in samples.items():
        finite = np.asarray([v for v in values if math.isfinite(v)])
        if finite.size:
            out[name] = (float(np.percentile(finite, low)), float(np.percentile(finite, high)))
    return out


def finite(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
