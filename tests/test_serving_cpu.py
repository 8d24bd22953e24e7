"""What keeps the server's CPU per score small (`python -m bench api_cpu` measures it end to end).

- `score_frame` builds its XGBoost matrices with the serving thread count: a DMatrix's default (every core)
  makes XGBoost start a thread team on each call, whose spinning cost ~10x the work of a one-row score;
  and one matrix serves both the prediction and the SHAP contributions when every row is explained;
- XGBoost's feature-name check runs once per booster (not on every call), and still refuses a mismatch;
- stores whose adapters read in process (memory, a local SQLite file) are read on the event loop: no hop
  to a worker thread and back; any other store (DynamoDB) is read in a worker thread, never on the loop.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from inference.app import create_app
from inference.config import ServingConfig
from inference.fraud_scoring import FeatureMismatchError, score_frame
from inference.loaded import SERVING_THREADS, LoadedModel
from tests.test_inference_app import auth, make_app, platform, transaction  # noqa: F401 - the fixture


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


# -- where the stores are read: on the event loop when in process, else in a worker thread --------------
WORKER = "AnyIO worker thread"


def _record_threads(monkeypatch: pytest.MonkeyPatch, target: object, method: str) -> list[str]:
    """The names of the threads that call `target.method` while the test runs."""
    names: list[str] = []
    original = getattr(target, method)

    def recorded(*args: object, **kwargs: object) -> object:
        names.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(target, method, recorded)
    return names


class _RemoteKeys:
    """A key store without `reads_in_process`, as a remote one (DynamoDB): reads must stay off the loop."""

    def __init__(self, store: object) -> None:
        self.store = store

    def get(self, key_id: str) -> object:
        return self.store.get(key_id)


def test_the_adapters_say_whether_their_reads_stay_in_process(tmp_path):
    from cdp.apikeys.dynamodb import DynamoDbApiKeyStore
    from cdp.apikeys.sqlite import SqliteApiKeyStore
    from cdp.online.dynamodb import DynamoDbOnlineStore
    from cdp.online.local import LocalOnlineStore
    from inference.state import reads_in_process

    assert reads_in_process(LocalOnlineStore(None)) and reads_in_process(SqliteApiKeyStore(tmp_path / "k.db"))
    assert not reads_in_process(DynamoDbOnlineStore(client=None, table="t"))
    assert not reads_in_process(DynamoDbApiKeyStore(client=None, table="t"))
    assert not reads_in_process(_RemoteKeys(None))


def test_in_process_stores_are_read_on_the_event_loop_without_a_worker_thread(platform, monkeypatch):  # noqa: F811
    app = make_app(platform)
    serving = app.state.serving
    assert serving.keys_in_process and serving.features_in_process
    features = _record_threads(monkeypatch, serving.card_features, "features")
    keys = _record_threads(monkeypatch, serving.key_store, "get")
    headers = auth(platform.keys["fraud"])
    with TestClient(app) as c:
        for i in range(3):
            r = c.post("/v1/fraud/score", json={"transaction": transaction(platform, i)}, headers=headers)
            assert r.status_code == 200 and r.json()["model"] == "cdp-fraud"
        batch = {"transactions": [transaction(platform, i) for i in range(2)]}
        assert c.post("/v1/fraud/score:batch", json=batch, headers=headers).status_code == 200
    # the first score loads the cards' attributes from the lake: in a thread; a batch always is
    assert features[0] == WORKER and features[-1] == WORKER
    assert len(features) == 4 and all(name != WORKER for name in features[1:3])
    assert len(keys) == 4 and all(name != WORKER for name in keys)


def test_stores_read_over_the_network_are_read_in_worker_threads(platform, monkeypatch):  # noqa: F811
    config = ServingConfig(reload_seconds=0.0, rate_per_second=1000.0, rate_burst=1000)
    app = create_app(backends=platform.backends, config=config, key_store=_RemoteKeys(platform.key_store))
    serving = app.state.serving
    assert not serving.keys_in_process
    serving.features_in_process = False  # as with a remote online store
    features = _record_threads(monkeypatch, serving.card_features, "features")
    keys = _record_threads(monkeypatch, serving.key_store, "get")
    headers = auth(platform.keys["fraud"])
    with TestClient(app) as c:
        for i in range(3):
            r = c.post("/v1/fraud/score", json={"transaction": transaction(platform, i)}, headers=headers)
            assert r.status_code == 200
        assert (
            c.post("/v1/fraud/score", json={"transaction": {}}, headers=auth("cdpk_bad")).status_code == 401
        )
    assert features == [WORKER] * 3 and keys == [WORKER] * 3


# -- per-request work done once: client labels of the access log, security headers ---------------------
def test_the_access_log_hashes_each_client_address_once_and_keeps_few(monkeypatch):
    import inference.access_log as access

    middleware = access.AccessLogMiddleware(app=None, client_address_key="k")
    calls = []
    original = access.client_label
    monkeypatch.setattr(access, "client_label", lambda *a: calls.append(a[0]) or original(*a))
    first = middleware._client(("10.0.0.1", 5000))
    assert first == original(("10.0.0.1", 1), "hashed", b"k") and len(first) == 16
    assert middleware._client(("10.0.0.1", 6000)) == first and len(calls) == 1  # the port plays no part
    assert middleware._client(None) is None
    monkeypatch.setattr(access, "MAX_REMEMBERED", 3)
    for i in range(5):
        middleware._client((f"10.0.1.{i}", 1))
    assert len(middleware._labels) <= 3


def test_the_security_headers_are_those_of_the_path():
    from inference.security_headers import API_CSP, DOCS_CSP, SecurityHeadersMiddleware, security_headers

    middleware = SecurityHeadersMiddleware(app=None, hsts_seconds=60)
    assert middleware._api == security_headers("/v1/fraud/score", 60)
    assert middleware._api[b"content-security-policy"] == API_CSP.encode()
    assert middleware._docs["/docs"][b"content-security-policy"] == DOCS_CSP.encode()
    assert b"strict-transport-security" in middleware._api
