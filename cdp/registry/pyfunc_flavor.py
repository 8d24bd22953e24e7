"""The MLflow pyfunc form of a model folder: a `loader_module` flavour, so nothing is pickled.

`mlflow.pyfunc.load_model(uri).predict(frame)` returns, per model kind:
- classifier booster: probabilities (the booster's output), not labels;
- regression booster: predicted values (back-transformed, see `cdp.registry.scoring`);
- centroid model: the (n, k) soft segment assignment (`argmax` per row is the segment id).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cdp.registry.centroid import CentroidModel
from cdp.registry.scoring import BoosterModel, load_scoring_model

# Requirements written into the MLflow model (given explicitly: inferring them costs seconds and the network).
PIP_REQUIREMENTS = ["xgboost>=2.0", "pandas>=2.0", "numpy>=1.26"]


class PyfuncModel:
    """What MLflow's pyfunc wrapper calls: `predict(frame)` -> the kind's output (see the module doc)."""

    def __init__(self, model: BoosterModel | CentroidModel) -> None:
        self.model = model

    def predict(self, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        frame = pd.DataFrame(model_input)
        if self.model.kind == "regression":
            return self.model.predict(frame)
        return self.model.predict_proba(frame)


PyfuncBooster = PyfuncModel  # the name earlier saved models' loader may still use


def _load_pyfunc(data_path: str) -> PyfuncModel:
    """MLflow's entry point for a `loader_module` model: `data_path` is the saved model folder."""
    return PyfuncModel(load_scoring_model(Path(data_path)))


def save_pyfunc(model_dir: Path, destination: Path) -> None:
    """Write `model_dir` as an MLflow pyfunc model at `destination` (which must not exist)."""
    import mlflow.pyfunc

    mlflow.pyfunc.save_model(
        path=str(destination),
        loader_module=__name__,
        data_path=str(model_dir),
        pip_requirements=PIP_REQUIREMENTS,
    )
