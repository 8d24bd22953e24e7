"""What keeps the server's CPU per score small (`python -m bench api_cpu` measures it end to end).

- `score_frame` builds its XGBoost matrices with the serving thread count: a DMatrix's default (every core)
  makes XGBoost start a thread team on each call, whose spinning cost ~10x the work of a one-row score;
  and one matrix serves both the prediction and the SHAP contributions when every row is explained.
"""

from __future__ import annotations

import numpy as np
import pytest

from inference.fraud_scoring import score_frame
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
