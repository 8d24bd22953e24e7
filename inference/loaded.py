"""A champion model loaded for serving: the scoring model, its feature spec and where it came from."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdp.objectstore.port import ObjectStore
from cdp.registry.model_dir import booster_file, model_flavour
from cdp.registry.port import ModelVersion
from cdp.registry.scoring import BoosterModel, load_scoring_model
from inference.model_files import model_folder

FEATURES_FILE = "features.json"  # written beside the booster by the fraud training script


@dataclass(frozen=True)
class LoadedModel:
    """One model version ready to score. Immutable: a reload builds a new one and swaps the reference."""

    name: str
    version: int
    kind: str  # classification | regression | segmentation
    features: tuple[str, ...]
    model: Any  # cdp.registry.scoring.BoosterModel or cdp.registry.centroid.CentroidModel
    booster: Any | None = None  # the raw xgboost.Booster (boosters only), for SHAP contributions
    spec: dict[str, Any] = field(default_factory=dict)  # features.json when the folder has one
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def one_hot(self) -> dict[str, list[str]]:
        return dict(self.spec.get("one_hot") or {})


SERVING_THREADS = 1


def load_folder(
    folder: Path, name: str, version: int, metrics: dict[str, float] | None = None
) -> LoadedModel:
    """Load a model folder (`model.ubj`/`model.json`, optional `features.json`) for serving.

    The registry path (`load_version`) and the SageMaker container (`/opt/ml/model`) both load this way."""
    model = load_scoring_model(folder)
    booster = None
    if model_flavour(folder) == "xgboost":
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(str(booster_file(folder)))
        # Serving scores one row or a small batch at a time: a thread pool per call costs more than it
        # gives (a single row took ~100 ms on a busy 2-core machine with the default, ~1 ms with one).
        booster.set_param({"nthread": SERVING_THREADS})
        if isinstance(model, BoosterModel):
            model.use_threads(SERVING_THREADS)
    spec_path = folder / FEATURES_FILE
    spec = json.loads(spec_path.read_text(encoding="utf-8")) if spec_path.is_file() else {}
    return LoadedModel(
        name=name,
        version=version,
        kind=model.kind,
        features=tuple(model.features),
        model=model,
        booster=booster,
        spec=spec,
        metrics=dict(metrics or {}),
    )


def load_version(version: ModelVersion, object_store: ObjectStore | None) -> LoadedModel:
    """Fetch the version's folder and load it (the folder is kept only while loading)."""
    scratch = Path(tempfile.mkdtemp(prefix="cdp-serve-load-"))
    try:
        folder = model_folder(version, object_store, scratch)
        return load_folder(folder, version.model_name, version.version, dict(version.metrics))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
