"""Scoring a model version on the holdout through the serving code (`inference`), and the metrics.

Models are loaded exactly as serving loads a champion (`inference.loaded.load_version`) and fed the same
encoding (`inference.fraud_scoring.encode`, `inference.predict.predictions`), so what is measured here is
what would be served.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cdp.backends import Backends
from cdp.registry.port import ModelVersion
from inference.loaded import LoadedModel, load_version
from training.fraud.preprocess import encode_features

CALIBRATION_BINS = 10
HEURISTIC = "heuristic_last_12m"


def load(backends: Backends, version: ModelVersion) -> LoadedModel:
    """The version as serving would load it."""
    return load_version(version, backends.object_store)


def fraud_probabilities(model: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """P(fraud) of every row, with the model's own one-hot vocabulary (as training and serving encode)."""
    from inference.fraud_scoring import encode

    if model.one_hot:
        inputs = encode_features(frame, {"features": list(model.features), "one_hot": model.one_hot})
    else:
        inputs = encode(model, frame.to_dict("records"))
    return np.asarray(model.model.predict_proba(inputs), dtype=np.float64)


def model_outputs(model: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """Values (regression) or segment ids (segmentation), as `/invocations` computes them."""
    from inference.predict import predictions

    return np.asarray(predictions(model, frame), dtype=np.float64)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores))


def recall_at_budget(labels: np.ndarray, scores: np.ndarray, budget: float) -> float:
    """Share of frauds among the top `budget` share of rows by score (ties by row order)."""
    k = max(1, math.ceil(len(scores) * budget))
    top = np.argsort(-scores, kind="stable")[:k]
    positives = int(labels.sum())
    return float(labels[top].sum() / positives) if positives else 0.0


def brier_score(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(np.mean((scores - labels) ** 2))


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """ECE over equal-count bins of the score (rare positives leave equal-width bins nearly empty)."""
    order = np.argsort(scores, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk):
            total += len(chunk) * abs(float(scores[chunk].mean()) - float(labels[chunk].mean()))
    return total / len(scores)


def fraud_metrics(labels: np.ndarray, scores: np.ndarray, budget: float) -> dict[str, float]:
    return {
        "pr_auc": average_precision(labels, scores),
        "recall_at_budget": recall_at_budget(labels, scores, budget),
        "brier": brier_score(labels, scores),
        "ece": expected_calibration_error(labels, scores),
    }


def clv_metrics(truth: np.ndarray, predicted: np.ndarray, heuristic: np.ndarray) -> dict[str, float]:
    mae = float(np.mean(np.abs(predicted - truth)))
    heuristic_mae = float(np.mean(np.abs(heuristic - truth)))
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean((predicted - truth) ** 2))),
        "mae_ratio_to_heuristic": mae / heuristic_mae if heuristic_mae > 0 else float("inf"),
    }


def silhouette(space: np.ndarray, assignment: np.ndarray) -> float:
    """Mean silhouette of an assignment in a given space; 0.0 when fewer than two segments occur."""
    from sklearn.metrics import silhouette_score

    if len(np.unique(assignment)) < 2:
        return 0.0
    return float(silhouette_score(space, assignment))


def stability(first: np.ndarray, second: np.ndarray) -> float:
    """Adjusted Rand index of two assignments of the same customers (1.0 = the same segments)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(first, second))
