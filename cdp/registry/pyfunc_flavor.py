"""The MLflow pyfunc form of a model folder: a `loader_module` flavour, so nothing is pickled.

`mlflow.pyfunc.load_model(uri).predict(frame)` returns probabilities (the booster's output), not labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cdp.registry.scoring import BoosterModel

# Requirements written into the MLflow model (given explicitly: inferring them costs seconds and the network).
PIP_REQUIREMENTS = ["xgboost>=2.0", "pandas>=2.0", "numpy>=1.26"]


class PyfuncBooster:
    """What MLflow's pyfunc wrapper calls: `predict(frame)` -> probabilities."""

    def __init__(self, model: BoosterModel) -> None:
        self.model = model

    def predict(self, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        return self.model.predict_proba(pd.DataFrame(model_input))


def _load_pyfunc(data_path: str) -> PyfuncBooster:
    """MLflow's entry point for a `loader_module` model: `data_path` is the saved model folder."""
    return PyfuncBooster(BoosterModel.load(Path(data_path)))


def save_pyfunc(model_dir: Path, destination: Path) -> None:
    """Write `model_dir` as an MLflow pyfunc model at `destination` (which must not exist)."""
    import mlflow.pyfunc

    mlflow.pyfunc.save_model(
        path=str(destination),
        loader_module=__name__,
        data_path=str(model_dir),
        pip_requirements=PIP_REQUIREMENTS,
    )
