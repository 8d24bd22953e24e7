"""Model outputs for a feature frame, per model kind (what `/invocations` returns)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from inference.fraud_scoring import Score, encode, score_frame
from inference.loaded import LoadedModel


def model_input(model: LoadedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in the model's feature order: as given when it has every model feature, else encoded
    from raw columns (one-hot of categorical columns, as in training)."""
    if all(f in frame.columns for f in model.features):
        return frame[list(model.features)].apply(pd.to_numeric, errors="coerce").astype("float32")
    return encode(model, frame.to_dict("records"))


def predictions(model: LoadedModel, frame: pd.DataFrame) -> list:
    """Probabilities (classifier), values (regression) or segment ids (segmentation), as JSON lists."""
    x = model_input(model, frame)
    if model.kind == "classification":
        out = model.model.predict_proba(x)
    else:
        out = model.model.predict(x)
    return np.asarray(out, dtype=np.float64).tolist()


def score_with_reasons(model: LoadedModel, frame: pd.DataFrame, reason_codes: int) -> list[Score]:
    """A booster classifier's probability and top `reason_codes` SHAP contributions of each row."""
    return score_frame(model, model_input(model, frame), reason_codes)
