"""Fraud scores: the online features encoded exactly as in training, the booster's probability, the
decision at the threshold and the top SHAP reason codes (xgboost `pred_contribs`, exact TreeSHAP)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from inference.loaded import LoadedModel
from training.fraud.preprocess import encode_features, one_hot_name

DEFAULT_THRESHOLD = 0.5
THRESHOLD_METRIC = "alert_threshold"  # the evaluation's score at the alert budget


class FeatureMismatchError(ValueError):
    """The model wants features the request cannot provide (names the features, never values)."""


@dataclass(frozen=True)
class Score:
    probability: float
    reasons: list[tuple[str, float]]


def decision_threshold(model: LoadedModel, configured: float | None) -> float:
    """The configured threshold, else the champion's evaluated alert threshold, else 0.5."""
    if configured is not None:
        return float(configured)
    return float(model.metrics.get(THRESHOLD_METRIC, DEFAULT_THRESHOLD))


def _one_hot_spec(model: LoadedModel, frame: pd.DataFrame) -> dict[str, list[str]]:
    """The model's one-hot vocabulary: from its features.json, else recovered from its feature names."""
    if model.one_hot:
        return model.one_hot
    wanted = set(model.features)
    spec: dict[str, list[str]] = {}
    for column in frame.columns:
        if frame[column].dtype == object:
            values = [v for v in frame[column].dropna().unique() if one_hot_name(column, str(v)) in wanted]
            if any(f.startswith(f"{column}__") for f in wanted):
                spec[column] = sorted(str(v) for v in values)
    return spec


def _number(value: Any) -> float:
    """`pd.to_numeric(errors="coerce")` of one value: bools 0/1, numbers as they are, anything else NaN."""
    if value is None or isinstance(value, str):
        try:
            return float(value) if value is not None else np.nan
        except ValueError:
            return np.nan
    return float(value)


def encode_rows(model: LoadedModel, feature_rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The same encoding as `training.fraud.preprocess.encode_features` (the spec's one-hot vocabulary,
    numbers as float32, missing as NaN), row by row without pandas: the per-request path."""
    one_hot = {one_hot_name(c, v): (c, v) for c, values in model.one_hot.items() for v in values}
    out = np.empty((len(feature_rows), len(model.features)), dtype=np.float32)
    for i, row in enumerate(feature_rows):
        for j, name in enumerate(model.features):
            if name in one_hot:
                column, value = one_hot[name]
                cell = row.get(column)
                out[i, j] = 1.0 if cell is not None and str(cell) == value else 0.0
            elif name in row:
                out[i, j] = _number(row[name])
            else:
                raise FeatureMismatchError(f"the online features lack model features: {[name]}")
    return out


def encode(model: LoadedModel, feature_rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The model's input frame (float32, model order) from raw feature dicts, as training encoded it."""
    if model.one_hot:
        return pd.DataFrame(encode_rows(model, feature_rows), columns=list(model.features))
    frame = pd.DataFrame(list(feature_rows))
    one_hot = _one_hot_spec(model, frame)
    encoded = {one_hot_name(c, v) for c, values in one_hot.items() for v in values}
    absent = [f for f in model.features if f not in frame.columns and f not in encoded and "__" not in f]
    if absent:
        raise FeatureMismatchError(f"the online features lack model features: {absent}")
    spec = {"features": list(model.features), "one_hot": one_hot}
    for name in model.features:  # one-hot columns of values never seen in this request are 0
        if name not in frame.columns and name not in encoded:
            frame[name] = 0.0
    return encode_features(frame, spec)


def score_frame(model: LoadedModel, frame: pd.DataFrame | np.ndarray, reason_codes: int = 3) -> list[Score]:
    """Probability and the `reason_codes` largest positive contributions of each row."""
    import xgboost

    if model.booster is None:
        raise FeatureMismatchError("the fraud model is not an XGBoost booster")
    data = frame.to_numpy(np.float32) if isinstance(frame, pd.DataFrame) else frame
    matrix = xgboost.DMatrix(data, feature_names=list(model.features), missing=np.nan)
    probabilities = model.booster.predict(matrix)
    contributions = model.booster.predict(matrix, pred_contribs=True)[:, :-1]  # last column: bias
    names = model.features
    scores = []
    for p, row in zip(probabilities, contributions, strict=True):
        order = np.argsort(-row, kind="stable")[:reason_codes]
        reasons = [(names[i], float(row[i])) for i in order if row[i] > 0]
        scores.append(Score(float(p), reasons))
    return scores
