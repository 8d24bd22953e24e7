"""Fraud scores: the online features encoded exactly as in training, the booster's probability, the
decision at the threshold and the top SHAP reason codes (xgboost `pred_contribs`, exact TreeSHAP)."""

from __future__ import annotations

import operator
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cdp.scoring.port import DEFAULT_THRESHOLD, Score
from inference.loaded import SERVING_THREADS, LoadedModel
from training.fraud.preprocess import encode_features, one_hot_name

THRESHOLD_METRIC = "alert_threshold"  # the evaluation's score at the alert budget


class FeatureMismatchError(ValueError):
    """The model wants features the request cannot provide (names the features, never values)."""


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


def _missing_feature(names: Sequence[str], feature_rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The first of `names` (row by row, in model order) that a row lacks, else None."""
    for row in feature_rows:
        for name in names:
            if name not in row:
                return name
    return None


def _numeric_block(names: Sequence[str], feature_rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The float64 matrix of the numeric features, each cell as `_number` converts it.

    One numpy conversion of the whole block (numpy parses strings and converts bools, numbers and None as
    `float()` does); a block with a cell numpy cannot convert (an unparseable string) goes column by column
    through `_number`, which makes such a cell NaN."""
    take = operator.itemgetter(*names)  # a tuple of the cells (the cell itself for one name)
    cells = [take(row) for row in feature_rows] if len(names) > 1 else [[take(r)] for r in feature_rows]
    shape = (len(feature_rows), len(names))
    try:
        block = np.array(cells, dtype=np.float64)
        if block.shape == shape:  # a cell holding a sequence adds a dimension: `_number` rejects it below
            return block
    except (TypeError, ValueError):
        pass
    block = np.empty(shape, dtype=np.float64)
    for j in range(len(names)):
        block[:, j] = [_number(cells[i][j]) for i in range(len(feature_rows))]
    return block


def encode_rows(model: LoadedModel, feature_rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The same encoding as `training.fraud.preprocess.encode_features` (the spec's one-hot vocabulary,
    numbers as float32, missing as NaN), without pandas: the per-request and per-batch path.

    Numeric features are converted as one block, one-hot columns by a value lookup per row and column."""
    one_hot = {one_hot_name(c, v): (c, v) for c, values in model.one_hot.items() for v in values}
    features = model.features
    n = len(feature_rows)
    out = np.zeros((n, len(features)), dtype=np.float32)
    numeric = [j for j, name in enumerate(features) if name not in one_hot]
    if n == 0:
        return out
    if numeric:
        names = [features[j] for j in numeric]
        plain = all(type(row) is dict for row in feature_rows)  # other mappings may answer a missing key
        missing = None if plain else _missing_feature(names, feature_rows)
        try:
            if missing is None:
                out[:, numeric] = _numeric_block(names, feature_rows)
        except KeyError:
            missing = _missing_feature(names, feature_rows)
            if missing is None:
                raise
        if missing is not None:
            raise FeatureMismatchError(f"the online features lack model features: {[missing]}")
    positions: dict[str, dict[str, list[int]]] = {}  # column -> value -> output columns
    for j, name in enumerate(features):
        if name in one_hot:
            column, value = one_hot[name]
            positions.setdefault(column, {}).setdefault(value, []).append(j)
    for column, by_value in positions.items():
        for i, row in enumerate(feature_rows):
            cell = row.get(column)
            if cell is not None:
                for j in by_value.get(str(cell), ()):
                    out[i, j] = 1.0
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


_CHECKED_NAMES: weakref.WeakKeyDictionary[Any, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _check_feature_names(booster: Any, names: tuple[str, ...]) -> None:
    """XGBoost's check of a prediction's feature names (a booster with names takes exactly those, in
    order), done once per booster: every matrix `score_frame` builds has the model's columns in the
    model's order, and naming each one (and reading the names back to compare) cost a quarter of a score."""
    if _CHECKED_NAMES.get(booster) == names:
        return
    expected = booster.feature_names
    if expected is not None and tuple(expected) != tuple(names):
        differ = sorted(set(expected) ^ set(names))[:10]
        raise FeatureMismatchError(f"the booster's features differ from the model's: {differ or 'order'}")
    _CHECKED_NAMES[booster] = tuple(names)


def score_frame(
    model: LoadedModel,
    frame: pd.DataFrame | np.ndarray,
    reason_codes: int = 3,
    explain_from: float | None = None,
) -> list[Score]:
    """Probability and the `reason_codes` largest positive contributions of each row.

    `explain_from`: reason codes only for the rows scored at least this (the alerts); the others get
    none. Exact TreeSHAP costs far more than the prediction, and a stream explains its alerts only."""
    import xgboost

    if model.booster is None:
        raise FeatureMismatchError("the fraud model is not an XGBoost booster")
    data = frame.to_numpy(np.float32) if isinstance(frame, pd.DataFrame) else frame
    names = model.features
    if data.ndim != 2 or data.shape[1] != len(names):
        raise FeatureMismatchError(f"the model takes {len(names)} features, the input has {data.shape[1:]}")
    _check_feature_names(model.booster, names)  # then each call skips XGBoost's own name check

    def matrix(rows: np.ndarray) -> xgboost.DMatrix:
        # the serving thread count, as the booster's: a DMatrix's default (every core) makes XGBoost
        # start a thread team per call, whose spinning costs ~10x the work of a one-row score
        return xgboost.DMatrix(rows, missing=np.nan, nthread=SERVING_THREADS)

    every_row = matrix(data)
    probabilities = model.booster.predict(every_row, validate_features=False)
    explained = np.arange(len(probabilities))
    if explain_from is not None:
        explained = np.flatnonzero(probabilities >= explain_from)
    contributions = np.zeros((len(probabilities), len(names)), dtype=np.float32)
    if len(explained):
        chosen = every_row if len(explained) == len(probabilities) else matrix(data[explained])
        shap = model.booster.predict(chosen, pred_contribs=True, validate_features=False)
        contributions[explained] = shap[:, :-1]  # the last column is the bias
    return _scores(probabilities, contributions, model.features, reason_codes)


def _scores(
    probabilities: np.ndarray, contributions: np.ndarray, names: Sequence[str], reason_codes: int
) -> list[Score]:
    """Each row's probability and its `reason_codes` largest contributions that are positive (largest
    first, ties in feature order), ranked for all rows by one stable argsort."""
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :reason_codes]
    top = np.take_along_axis(contributions, order, axis=1)
    scores = []
    for p, indexes, values in zip(probabilities.tolist(), order.tolist(), top.tolist(), strict=True):
        reasons = [(names[i], c) for i, c in zip(indexes, values, strict=True) if c > 0]
        scores.append(Score(p, reasons))
    return scores
