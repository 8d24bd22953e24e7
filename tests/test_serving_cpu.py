"""What keeps the server's CPU per score small (`python -m bench api_cpu` measures it end to end).

- `score_frame` builds its XGBoost matrices with the serving thread count: a DMatrix's default (every core)
  makes XGBoost start a thread team on each call, whose spinning cost ~10x the work of a one-row score;
  and one matrix serves both the prediction and the SHAP contributions when every row is explained;
- XGBoost's feature-name check runs once per booster (not on every call), and still refuses a mismatch;
"""

from __future__ import annotations

import numpy as np
import pytest

from inference.fraud_scoring import FeatureMismatchError, score_frame
from inference.loaded import SERVING_THREADS, LoadedModel


@pytest.fixture(scope="module")
def small_model() -> tuple[LoadedModel, np.ndarray]:
    import xgboost

    rng = np.random.default_rng(5)
    names = [f"f{i}" for i in range(6)]
    x = rng.normal(size=(200, len(names))).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0.3).astype(int)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 1},
        xgboost.DMatrix(x, label=y, feature_names=names),
        num_boost_round=10,
    )
    spec = {"features": names, "one_hot": {}}
    return LoadedModel("cdp-fraud", 1, "classification", tuple(names), None, booster, spec), x


@pytest.fixture
def built_matrices(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The keyword arguments of every DMatrix built while the test runs."""
    import xgboost

    built: list[dict] = []
    original = xgboost.DMatrix

    def recording(*args: object, **kwargs: object) -> object:
        built.append({"rows": len(args[0]), **kwargs})
        return original(*args, **kwargs)

    monkeypatch.setattr(xgboost, "DMatrix", recording)
    return built


def test_one_serving_thread_matrix_scores_and_explains_every_row(small_model, built_matrices):
    model, x = small_model
    scores = score_frame(model, x[:1], 3)
    assert len(scores) == 1 and 0.0 <= scores[0].probability <= 1.0
    assert [(m["rows"], m["nthread"]) for m in built_matrices] == [(1, SERVING_THREADS)]


def test_explaining_the_alerts_only_builds_their_own_matrix_with_one_thread(small_model, built_matrices):
    model, x = small_model
    scores = score_frame(model, x, 3, explain_from=0.5)
    alerts = sum(s.probability >= 0.5 for s in scores)
    assert 0 < alerts < len(x)
    assert [(m["rows"], m["nthread"]) for m in built_matrices] == [(len(x), 1), (alerts, 1)]


def test_feature_names_are_checked_once_per_booster_and_still_refuse_a_mismatch(small_model):
    import xgboost

    model, x = small_model
    booster = model.booster
    reordered = LoadedModel("cdp-fraud", 2, "classification", model.features[::-1], None, booster, model.spec)
    with pytest.raises(FeatureMismatchError, match="differ from the model's: order"):
        score_frame(reordered, x[:1])
    renamed = (*model.features[:-1], "other")
    other = LoadedModel("cdp-fraud", 3, "classification", renamed, None, booster, model.spec)
    with pytest.raises(FeatureMismatchError, match="'f5', 'other'"):
        score_frame(other, x[:1])
    with pytest.raises(FeatureMismatchError, match="takes 6 features"):
        score_frame(model, x[:1, :5])
    unnamed = xgboost.Booster(model_file=booster.save_raw())
    unnamed.feature_names = None
    anonymous = LoadedModel("cdp-fraud", 4, "classification", model.features, None, unnamed, model.spec)
    assert score_frame(anonymous, x[:3]) == score_frame(model, x[:3])
