"""Scoring a saved model folder: a feature frame in, the model's output out, columns put in model order.

Two flavours (see `model_dir`):
- XGBoost boosters (`BoosterModel`). A classifier (`binary:logistic`, `multi:softprob`) gives
  probabilities from `predict_proba` (and the same from `predict`). A regression (`reg:*`,
  `count:poisson`) gives values from `predict`; its folder may hold `regression.json` with
  `"target_transform": "log1p"` (the booster predicts log1p of the value) and `"base_margin_feature"`
  (the log1p of that column is the booster's base margin), and `predict_proba` refuses it;
- centroid models (`cdp.registry.centroid.CentroidModel`): `predict` -> segment ids,
  `predict_proba` -> soft assignment (n, k).
`load_scoring_model(folder)` picks the flavour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cdp.registry.feature_frame import MissingFeaturesError
from cdp.registry.model_dir import CENTROID_FLAVOUR, booster_file, model_flavour
from cdp.registry.port import InvalidRegistrationError, Lineage

if TYPE_CHECKING:
    from cdp.registry.centroid import CentroidModel

_PROBABILITY_OBJECTIVES = ("binary:logistic", "multi:softprob")
_REGRESSION_PREFIXES = ("reg:", "count:poisson")
REGRESSION_FILE = "regression.json"
_TRANSFORMS = ("identity", "log1p")


class NotAProbabilityModelError(TypeError):
    """`predict_proba` was asked of a regression model (use `predict`)."""


class BoosterModel:
    """An XGBoost booster loaded from a model folder: a classifier or a regression."""

    def __init__(self, booster: object, regression: dict[str, Any] | None = None) -> None:
        self._booster = booster
        config = json.loads(booster.save_config())  # type: ignore[attr-defined]
        self.objective: str = config["learner"]["objective"]["name"]
        if self.objective in _PROBABILITY_OBJECTIVES:
            self.kind = "classification"
        elif self.objective.startswith(_REGRESSION_PREFIXES):
            self.kind = "regression"
        else:
            raise ValueError(f"objective {self.objective!r} is neither a classifier's nor a regression's")
        self.features: tuple[str, ...] = tuple(booster.feature_names or ())  # type: ignore[attr-defined]
        regression = regression or {}
        self.target_transform: str = str(regression.get("target_transform", "identity"))
        self.base_margin_feature: str | None = regression.get("base_margin_feature")
        if self.target_transform not in _TRANSFORMS:
            raise ValueError(f"target transform {self.target_transform!r} is not one of {_TRANSFORMS}")
        if self.base_margin_feature is not None and self.base_margin_feature not in self.features:
            raise ValueError("the base margin feature is not one of the model's features")

    def use_threads(self, threads: int) -> None:
        """Threads XGBoost uses per prediction call (serving one row at a time: 1)."""
        self._booster.set_param({"nthread": threads})  # type: ignore[attr-defined]

    @classmethod
    def load(cls, model_dir: Path | str) -> BoosterModel:
        import xgboost

        folder = Path(model_dir)
        booster = xgboost.Booster()
        booster.load_model(str(booster_file(folder)))
        regression = None
        if (folder / REGRESSION_FILE).is_file():
            regression = json.loads((folder / REGRESSION_FILE).read_text(encoding="utf-8"))
        return cls(booster, regression)

    def _raw(self, features: pd.DataFrame) -> np.ndarray:
        import xgboost

        frame = features
        if self.features:
            missing = [c for c in self.features if c not in features.columns]
            if missing:
                raise MissingFeaturesError(f"feature frame lacks model features: {missing}")
            frame = features.loc[:, list(self.features)]
        base_margin = None
        if self.base_margin_feature is not None:
            base = frame[self.base_margin_feature].to_numpy(dtype=np.float64)
            base_margin = np.log1p(np.clip(base, 0.0, None)) if self.target_transform == "log1p" else base
        matrix = xgboost.DMatrix(frame, feature_names=list(self.features) or None, base_margin=base_margin)
        return np.asarray(self._booster.predict(matrix), dtype=np.float64)  # type: ignore[attr-defined]

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Probabilities for a classifier; values (back-transformed) for a regression."""
        raw = self._raw(features)
        return np.expm1(raw) if self.target_transform == "log1p" else raw

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(positive) as shape (n,) for a binary model; (n, k) class probabilities for softprob."""
        if self.kind != "classification":
            raise NotAProbabilityModelError("a regression model gives values: call predict")
        return self._raw(features)


def load_scoring_model(model_dir: Path | str) -> BoosterModel | CentroidModel:
    """The folder's model, whichever flavour it is."""
    folder = Path(model_dir)
    if model_flavour(folder) == CENTROID_FLAVOUR:
        from cdp.registry.centroid import CentroidModel

        return CentroidModel.load(folder)
    return BoosterModel.load(folder)


def check_lineage_features(model_dir: Path, lineage: Lineage) -> BoosterModel | CentroidModel:
    """Load the folder's model; its feature names, when it has them, must equal the lineage's (in order)."""
    try:
        model = load_scoring_model(model_dir)
    except InvalidRegistrationError:
        raise
    except Exception:  # xgboost's own error, an unknown objective or a malformed regression.json
        raise InvalidRegistrationError(
            "the model file is not an XGBoost booster or centroid model that the registry can score"
        ) from None
    if model.features and model.features != lineage.features:
        raise InvalidRegistrationError("lineage features differ from the features the model was trained on")
    return model
