"""The centroid model flavour: a JSON scaler + k-means centroids + named segments (e.g. segmentation).

`model.json` (kind `"centroid_model"`) holds `features` (column order), `log1p_features` (columns taken as
log1p first), `scaler.mean` / `scaler.scale`, `centroids` (k rows in standardised units) and `segments`
(`id`, `name`, `profile`, ... in centroid order). Loaded, it scores a feature frame:
- `predict(frame)` -> segment ids, shape (n,): the nearest centroid (Euclidean, standardised units);
- `predict_proba(frame)` -> soft assignment, shape (n, k): softmax over segments of minus the distance to
  each centroid. Rows sum to 1 and the largest entry is the `predict` segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cdp.registry.feature_frame import MissingFeaturesError
from cdp.registry.model_dir import CENTROID_KIND, centroid_document
from cdp.registry.port import InvalidRegistrationError


class CentroidModel:
    """A loaded centroid model: `features`, `segment_names`, `predict` and `predict_proba`."""

    kind = "segmentation"

    def __init__(self, doc: Mapping[str, Any]) -> None:
        try:
            self.features: tuple[str, ...] = tuple(str(f) for f in doc["features"])
            self.log1p_features = frozenset(str(f) for f in doc.get("log1p_features", ()))
            self._mean = np.asarray(doc["scaler"]["mean"], dtype=np.float64)
            self._scale = np.asarray(doc["scaler"]["scale"], dtype=np.float64)
            self.centroids = np.asarray(doc["centroids"], dtype=np.float64)
            segments = list(doc.get("segments") or [])
        except (KeyError, TypeError, ValueError):
            raise InvalidRegistrationError(
                "centroid model.json lacks features, scaler or centroids"
            ) from None
        n, k = len(self.features), len(self.centroids)
        if k < 1 or self.centroids.shape != (k, n) or self._mean.shape != (n,) or self._scale.shape != (n,):
            raise InvalidRegistrationError(
                "centroid model.json: centroids and scaler do not match the features"
            )
        if not np.all(np.isfinite(self.centroids)) or np.any(self._scale <= 0):
            raise InvalidRegistrationError(
                "centroid model.json: centroids or scales are not finite and positive"
            )
        if segments and len(segments) != k:
            raise InvalidRegistrationError("centroid model.json: one segment entry per centroid is required")
        self.segment_names: tuple[str, ...] = tuple(
            str(s.get("name", f"segment {i}")) for i, s in enumerate(segments)
        ) or tuple(f"segment {i}" for i in range(k))

    @classmethod
    def load(cls, model_dir: Path | str) -> CentroidModel:
        doc = centroid_document(Path(model_dir))
        if doc is None:
            raise InvalidRegistrationError(f"model folder holds no {CENTROID_KIND} model.json")
        return cls(doc)

    def standardised(self, features: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.features if c not in features.columns]
        if missing:
            raise MissingFeaturesError(f"feature frame lacks model features: {missing}")
        x = features.loc[:, list(self.features)].to_numpy(dtype=np.float64, copy=True)
        x = np.where(np.isfinite(x), x, 0.0)
        for i, name in enumerate(self.features):
            if name in self.log1p_features:
                x[:, i] = np.log1p(np.clip(x[:, i], 0.0, None))
        return (x - self._mean) / self._scale

    def distances(self, features: pd.DataFrame) -> np.ndarray:
        """(n, k) Euclidean distances to the centroids in standardised units."""
        z = self.standardised(features)
        return np.sqrt(((z[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=-1))

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Segment ids (n,), the nearest centroid."""
        return np.argmin(self.distances(features), axis=1).astype(np.int64)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Soft assignment (n, k): softmax of minus the distances."""
        logits = -self.distances(features)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)
