"""Scoring a saved XGBoost booster: probabilities from a feature frame, columns put in the model's order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cdp.registry.model_dir import booster_file
from cdp.registry.port import InvalidRegistrationError, Lineage

_PROBABILITY_OBJECTIVES = ("binary:logistic", "multi:softprob")


class MissingFeaturesError(ValueError):
    """The frame lacks columns the model was trained on (names the columns, never values)."""


class BoosterModel:
    """An XGBoost booster loaded from a model folder; `predict_proba` returns probabilities."""

    def __init__(self, booster: object) -> None:
        import json

        self._booster = booster
        config = json.loads(booster.save_config())  # type: ignore[attr-defined]
        self.objective: str = config["learner"]["objective"]["name"]
        if self.objective not in _PROBABILITY_OBJECTIVES:
            raise ValueError(f"objective {self.objective!r} does not produce probabilities")
        self.features: tuple[str, ...] = tuple(booster.feature_names or ())  # type: ignore[attr-defined]

    @classmethod
    def load(cls, model_dir: Path | str) -> BoosterModel:
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(str(booster_file(Path(model_dir))))
        return cls(booster)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(positive) as shape (n,) for a binary model; (n, k) class probabilities for softprob."""
        import xgboost

        frame = features
        if self.features:
            missing = [c for c in self.features if c not in features.columns]
            if missing:
                raise MissingFeaturesError(f"feature frame lacks model features: {missing}")
            frame = features.loc[:, list(self.features)]
        matrix = xgboost.DMatrix(frame, feature_names=list(self.features) or None)
        return np.asarray(self._booster.predict(matrix), dtype=np.float64)  # type: ignore[attr-defined]


def check_lineage_features(model_dir: Path, lineage: Lineage) -> BoosterModel:
    """Load the folder's booster; its feature names, when it has them, must equal the lineage's (in order)."""
    try:
        model = BoosterModel.load(model_dir)
    except InvalidRegistrationError:
        raise
    except Exception:  # xgboost's own error, or an objective that gives no probabilities
        raise InvalidRegistrationError(
            "the model file is not an XGBoost booster that gives probabilities"
        ) from None
    if model.features and model.features != lineage.features:
        raise InvalidRegistrationError("lineage features differ from the features the model was trained on")
    return model
