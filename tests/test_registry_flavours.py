"""The registry's non-classifier flavours on both adapters: a JSON centroid model (segmentation) and an
XGBoost regression with a log1p target and a base margin (CLV)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cdp.registry import InvalidRegistrationError, Lineage, ModelRegistry
from cdp.registry.centroid import CentroidModel
from cdp.registry.model_dir import CENTROID_FLAVOUR, model_flavour, pack, unpack
from cdp.registry.scoring import NotAProbabilityModelError, load_scoring_model
from tests.contract.test_registry_contract import fresh_name, harness, registry  # noqa: F401  (fixtures)

SEGMENT_FEATURES = ("monetary_12m", "online_share_12m", "share_travel_12m")
CLV_FEATURES = ("heuristic_last_12m", "growth_12m", "frequency_12m")


def segment_frame(rows: int = 40, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "monetary_12m": rng.gamma(2.0, 20_000.0, rows),
            "online_share_12m": rng.uniform(0, 0.4, rows),
            "share_travel_12m": rng.uniform(0, 0.3, rows),
        }
    )


def write_centroid_model(folder: Path) -> Path:
    """Three hand-placed centroids over log1p(monetary), online share and travel share."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "kind": "centroid_model",
        "format_version": 1,
        "features": list(SEGMENT_FEATURES),
        "log1p_features": ["monetary_12m"],
        "scaler": {"mean": [10.0, 0.2, 0.15], "scale": [1.0, 0.1, 0.1]},
        "centroids": [[-1.0, 1.5, -1.0], [0.5, -1.0, -1.0], [1.0, -0.5, 1.5]],
        "segments": [
            {"id": 0, "name": "online shoppers", "profile": {}},
            {"id": 1, "name": "everyday spenders", "profile": {}},
            {"id": 2, "name": "high-value travellers", "profile": {}},
        ],
    }
    (folder / "model.json").write_text(json.dumps(doc))
    return folder


def expected_segments(frame: pd.DataFrame) -> np.ndarray:
    z = np.c_[
        np.log1p(frame["monetary_12m"]) - 10.0,
        (frame["online_share_12m"] - 0.2) / 0.1,
        (frame["share_travel_12m"] - 0.15) / 0.1,
    ]
    centroids = np.array([[-1.0, 1.5, -1.0], [0.5, -1.0, -1.0], [1.0, -0.5, 1.5]])
    return np.argmin(((z[:, None] - centroids[None]) ** 2).sum(-1), axis=1)


def write_regression_model(folder: Path) -> tuple[Path, pd.DataFrame, np.ndarray]:
    import xgboost

    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "heuristic_last_12m": rng.gamma(2.0, 15_000.0, 300),
            "growth_12m": rng.normal(0, 0.3, 300),
            "frequency_12m": rng.poisson(800, 300).astype(float),
        }
    )
    future = frame["heuristic_last_12m"] * np.exp(0.8 * frame["growth_12m"])
    base = np.log1p(frame["heuristic_last_12m"].to_numpy())
    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 2, "eta": 0.3, "seed": 1, "nthread": 1},
        xgboost.DMatrix(frame, label=np.log1p(future), base_margin=base),
        num_boost_round=30,
    )
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(folder / "model.ubj"))
    (folder / "regression.json").write_text(
        json.dumps({"target_transform": "log1p", "base_margin_feature": "heuristic_last_12m"})
    )
    expected = np.expm1(booster.predict(xgboost.DMatrix(frame, base_margin=base)))
    return folder, frame, expected


def lineage_of(features: tuple[str, ...]) -> Lineage:
    return Lineage("sha256:" + "cd" * 32, features, "3f2c1e0", "run-7")


# -- the flavours on their own ---------------------------------------------------------------------------
def test_centroid_model_predicts_nearest_segment_and_soft_assignment(tmp_path: Path) -> None:
    folder = write_centroid_model(tmp_path / "seg")
    assert model_flavour(folder) == CENTROID_FLAVOUR
    model = load_scoring_model(folder)
    assert isinstance(model, CentroidModel) and model.kind == "segmentation"
    frame = segment_frame()
    ids = model.predict(frame.iloc[:, ::-1])  # columns in any order
    np.testing.assert_array_equal(ids, expected_segments(frame))
    proba = model.predict_proba(frame)
    assert proba.shape == (len(frame), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), ids)
    assert len(set(ids.tolist())) >= 2  # the check is not vacuous
    assert model.segment_names == ("online shoppers", "everyday spenders", "high-value travellers")
    # the packed folder round-trips as the same flavour
    assert model_flavour(unpack(pack(folder), tmp_path / "unpacked")) == CENTROID_FLAVOUR


def test_malformed_centroid_models_are_refused(tmp_path: Path) -> None:
    folder = write_centroid_model(tmp_path / "seg")
    doc = json.loads((folder / "model.json").read_text())
    doc["centroids"] = [[0.0, 1.0]]  # two coordinates for three features
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(InvalidRegistrationError, match="centroids"):
        load_scoring_model(folder)


def test_regression_booster_applies_base_margin_and_log1p(tmp_path: Path) -> None:
    folder, frame, expected = write_regression_model(tmp_path / "clv")
    model = load_scoring_model(folder)
    assert model.kind == "regression"
    np.testing.assert_allclose(model.predict(frame), expected, rtol=1e-5)
    assert np.corrcoef(model.predict(frame), frame["heuristic_last_12m"])[0, 1] > 0.8  # dollars, not logs
    with pytest.raises(NotAProbabilityModelError):
        model.predict_proba(frame)


# -- both adapters ---------------------------------------------------------------------------------------
def test_centroid_model_round_trip(registry: ModelRegistry, tmp_path: Path) -> None:  # noqa: F811
    folder = write_centroid_model(tmp_path / "seg")
    name = fresh_name()
    version = registry.register(
        name, folder, {"silhouette": 0.31, "k": 3}, {"seed": 7}, lineage_of(SEGMENT_FEATURES)
    )
    assert version.metrics == {"silhouette": 0.31, "k": 3.0}
    registry.approve(name, 1, "alice", "segments reviewed")
    loaded = registry.load_model(name)
    frame = segment_frame(seed=9)
    np.testing.assert_array_equal(loaded.predict(frame), expected_segments(frame))
    proba = loaded.predict_proba(frame)
    assert proba.shape == (len(frame), 3)
    np.testing.assert_allclose(proba, CentroidModel.load(folder).predict_proba(frame), rtol=1e-9)
    assert tuple(loaded.features) == SEGMENT_FEATURES


def test_centroid_model_lineage_features_are_checked(registry: ModelRegistry, tmp_path: Path) -> None:  # noqa: F811
    folder = write_centroid_model(tmp_path / "seg")
    with pytest.raises(InvalidRegistrationError, match="features"):
        registry.register(fresh_name(), folder, {}, {}, lineage_of(tuple(reversed(SEGMENT_FEATURES))))


def test_regression_round_trip(registry: ModelRegistry, tmp_path: Path) -> None:  # noqa: F811
    folder, frame, expected = write_regression_model(tmp_path / "clv")
    name = fresh_name()
    registry.register(name, folder, {"rmse_ratio_to_heuristic": 0.5}, {}, lineage_of(CLV_FEATURES))
    loaded = registry.load_model(name, 1)
    np.testing.assert_allclose(loaded.predict(frame), expected, rtol=1e-5)
    with pytest.raises(NotAProbabilityModelError):
        loaded.predict_proba(frame)
