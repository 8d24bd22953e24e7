"""Contract tests of the inference app over a real platform in a temporary CDP home: a real MLflow
registry holding tiny XGBoost / centroid models (champions), the local online store and a small lake.

Covers the SageMaker contract (`/ping`, `/invocations` JSON + CSV), every public route's 200 / 401 / 403 /
404 / 422 / 429, OpenAPI validity, hot reload without a restart, API Gateway v2 events through Mangum, and
that no personal data reaches responses or the access log.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import string
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from cdp.apikeys.commands import create_key, revoke_key
from cdp.apikeys.sqlite import SqliteApiKeyStore
from cdp.backends import Backends
from cdp.compliance.leakscan import LeakScanner
from cdp.lake.tables import TRANSACTIONS, LakeTable
from cdp.lake.writer import LakeWriter
from cdp.online.local import LocalOnlineStore
from cdp.registry import Lineage
from cdp.settings import Settings
from features.fraud import FRAUD_VIEW
from features.online import OnlineFeatures
from inference.app import create_app
from inference.config import ServingConfig
from training.fraud.preprocess import encode_features, feature_spec

B32 = "abcdefghijklmnopqrstuvwxyz234567"
MCCS = (5411, 7995, 5812, 5541, 5732)
SEGMENT_FEATURES = ("net_spend_365d", "channel_share_online_365d")
CLV_FEATURES = ("net_spend_365d", "purchases_365d", "heuristic_last_12m")
# values that must never come back from the API or reach its log
CARD_NUMBER = "4111111111111111"
EMAIL = "jane.doe@example.com"


def token(prefix: str, rng: random.Random) -> str:
    return prefix + "".join(rng.choice(B32) for _ in range(26))


def txn_id_of(card: str, line: int) -> str:
    return f"{card[4:]}-{line}"


def random_events(rng: random.Random, cards: list[str], users: dict[str, str], n: int) -> list[dict]:
    start = datetime(2019, 1, 1)
    events = []
    for i in range(n):
        card = rng.choice(cards)
        mcc = rng.choice(MCCS)
        online = rng.random() < 0.3
        events.append(
            {
                "txn_id": txn_id_of(card, i + 1),
                "user_token": users[card],
                "card_token": card,
                "ts": start + timedelta(minutes=37 * i),
                "amount_cents": int(rng.lognormvariate(8, 1.2)) * (-1 if rng.random() < 0.03 else 1),
                "channel": "online" if online else rng.choice(("swipe", "chip")),
                "merchant_id": rng.randint(1, 60),
                "merchant_city": None if online else rng.choice(("Reno", "Austin", "Rome")),
                "merchant_state": None if online else rng.choice(("NV", "TX", "Italy")),
                "zip": None if online else "89501",
                "mcc": mcc,
                "errors": ["Bad CVV"] if rng.random() < 0.05 else None,
                "is_fraud": False,
                "event_seq": i + 1,
            }
        )
    return events


def train_fraud_model(folder: Path, events: list[dict], seed: int = 1) -> pd.DataFrame:
    """A tiny booster on the fraud view's real online features (mcc_group one-hot), as training does."""
    import xgboost

    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(None))
    rows = [online.update(e) for e in events]
    frame = pd.DataFrame(rows)
    frame["split"] = "train"
    frame["is_fraud"] = (
        (frame["mcc_group"] == "cash_and_gambling") & (frame["amount_cents"] > 3000)
        | (frame["has_error"].astype(bool))
    ).astype(int)
    spec = feature_spec(frame)
    x = encode_features(frame, spec)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": seed, "nthread": 1},
        xgboost.DMatrix(x.to_numpy(np.float32), label=frame["is_fraud"], feature_names=spec["features"]),
        num_boost_round=15 + seed,
    )
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(folder / "model.ubj"))
    doc = {"features": spec["features"], "one_hot": spec["one_hot"], "label": "is_fraud"}
    (folder / "features.json").write_text(json.dumps(doc))
    return x


def train_clv_model(folder: Path) -> None:
    import xgboost

    rng = np.random.default_rng(3)
    x = pd.DataFrame(
        {
            "net_spend_365d": rng.gamma(2.0, 50_000.0, 300),
            "purchases_365d": rng.poisson(300, 300).astype(float),
            "heuristic_last_12m": rng.gamma(2.0, 50_000.0, 300),
        }
    )
    y = 0.5 * x["net_spend_365d"] + 0.5 * x["heuristic_last_12m"]
    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 2, "seed": 1, "nthread": 1},
        xgboost.DMatrix(x, label=y),
        num_boost_round=20,
    )
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(folder / "model.ubj"))


def write_segmentation_model(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "kind": "centroid_model",
        "format_version": 1,
        "features": list(SEGMENT_FEATURES),
        "log1p_features": ["net_spend_365d"],
        "scaler": {"mean": [11.0, 0.3], "scale": [1.0, 0.2]},
        "centroids": [[-1.0, 1.5], [1.0, -1.0]],
        "segments": [
            {"id": 0, "name": "online shoppers", "profile": {}},
            {"id": 1, "name": "big spenders in store", "profile": {}},
        ],
    }
    (folder / "model.json").write_text(json.dumps(doc))


def write_lake(backends: Backends, events: list[dict], users: list[str]) -> None:
    bucket = backends.settings.lake_bucket
    writer = LakeWriter(backends.object_store, bucket)
    txns = pa.Table.from_pylist(
        [{**e, "year": e["ts"].year, "month": e["ts"].month} for e in events], schema=TRANSACTIONS.schema
    )
    writer.write_chunk(TRANSACTIONS, txns, "0")
    backends.catalog.register_table(TRANSACTIONS.info(bucket))
    rows = pa.table(
        {
            "user_token": users,
            "as_of": pa.array([datetime(2019, 3, 1)] * len(users), pa.timestamp("s")),
            # the first user shops online and spends little, the second spends much in store
            "net_spend_365d": pa.array([2_000.0, 900_000.0][: len(users)], pa.float64()),
            "purchases_365d": pa.array([40, 900][: len(users)], pa.int64()),
            "channel_share_online_365d": pa.array([0.9, 0.05][: len(users)], pa.float64()),
            "gender": pa.array(["F", "M"][: len(users)], pa.string()),
        }
    )
    table = LakeTable("customer_features", rows.schema)
    writer.replace_table(table, rows)
    backends.catalog.register_table(table.info(bucket))


@dataclass
class Platform:
    root: Path
    settings: Settings
    backends: Backends
    key_store: SqliteApiKeyStore
    keys: dict[str, str]  # name -> API key
    cards: list[str]
    users: dict[str, str]  # card -> user
    profiled_users: list[str]
    events: list[dict]
    fraud_frame: pd.DataFrame  # encoded training features
    fraud_v2_dir: Path


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Platform:
    root = tmp_path_factory.mktemp("serving")
    settings = Settings(home=root / "home")
    backends = Backends(settings)
    rng = random.Random(11)
    cards = [token("crd_", rng) for _ in range(6)]
    user_list = [token("usr_", rng) for _ in range(3)]
    users = {c: user_list[i % 3] for i, c in enumerate(cards)}
    events = random_events(rng, cards, users, 500)
    fraud_x = train_fraud_model(root / "fraud-v1", events, seed=1)
    train_fraud_model(root / "fraud-v2", events, seed=2)
    train_clv_model(root / "clv")
    write_segmentation_model(root / "segmentation")
    registry = backends.model_registry
    for name, folder, metrics in (
        ("cdp-fraud", root / "fraud-v1", {"pr_auc": 0.5, "alert_threshold": 0.3}),
        ("cdp-clv", root / "clv", {"rmse": 1.0}),
        ("cdp-segmentation", root / "segmentation", {"silhouette": 0.4}),
    ):
        from cdp.registry.scoring import load_scoring_model

        features = load_scoring_model(folder).features
        registry.register(name, folder, metrics, {}, Lineage("sha256:test", features, "test", "run-1"))
        registry.approve(name, 1, "tester", "test champion")
    write_lake(backends, events, user_list[:2])
    store = SqliteApiKeyStore(root / "keys.sqlite3")
    keys = {
        "all": create_key(store, "all scopes", ["fraud:score", "customers:read", "models:read",
                                                "models:admin", "invocations"])[0],
        "fraud": create_key(store, "fraud only", ["fraud:score"])[0],
        "models": create_key(store, "models only", ["models:read"])[0],
    }  # fmt: skip
    revoked, record = create_key(store, "revoked", ["fraud:score"])
    revoke_key(store, record.key_id)
    keys["revoked"] = revoked
    return Platform(
        root, settings, backends, store, keys, cards, users, user_list[:2], events, fraud_x,
        root / "fraud-v2",
    )  # fmt: skip


def make_app(platform: Platform, **config):  # noqa: ANN201
    defaults = {"reload_seconds": 0.0, "rate_per_second": 1000.0, "rate_burst": 1000}
    return create_app(
        backends=platform.backends,
        config=ServingConfig(**{**defaults, **config}),
        key_store=platform.key_store,
    )


@pytest.fixture(scope="module")
def client(platform):  # noqa: ANN201
    with TestClient(make_app(platform)) as c:
        yield c


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def transaction(platform: Platform, i: int = 0, **changes) -> dict:
    card = platform.cards[i % len(platform.cards)]
    doc = {
        "txn_id": txn_id_of(card, 10_000 + i),
        "user_token": platform.users[card],
        "card_token": card,
        "ts": "2019-02-01T12:00:00",
        "amount_cents": 45_000,
        "channel": "online",
        "merchant_id": 7,
        "merchant_city": None,
        "merchant_state": None,
        "zip": None,
        "mcc": 7995,
        "errors": ["Bad CVV"],
    }
    doc.update(changes)
    return doc


# -- SageMaker contract ----------------------------------------------------------------------------------
def test_ping_is_200_once_the_champion_is_loaded(client):
    assert client.get("/ping").status_code == 200


def test_ping_is_503_without_a_champion(platform):
    with TestClient(make_app(platform, invocations_model="cdp-none")) as c:
        assert c.get("/ping").status_code == 503


def test_invocations_json_matches_the_registry_model(client, platform):
    frame = platform.fraud_frame.head(5)
    expected = platform.backends.model_registry.load_model("cdp-fraud").predict_proba(frame)
    body = {"instances": json.loads(frame.to_json(orient="records"))}
    r = client.post("/invocations", json=body, headers=auth(platform.keys["all"]))
    assert r.status_code == 200
    assert r.json()["model"] == "cdp-fraud" and r.json()["model_version"] == 1
    np.testing.assert_allclose(r.json()["predictions"], expected, rtol=1e-6)
    reasons = r.json()["reasons"]  # the same reason codes as the REST API's scores
    assert len(reasons) == 5 and all(len(row) <= 3 for row in reasons)
    assert all(c["feature"] in frame.columns and c["contribution"] > 0 for row in reasons for c in row)
    assert any(reasons)
    split = json.loads(frame.to_json(orient="split", index=False))
    r2 = client.post("/invocations", json=split, headers=auth(platform.keys["all"]))
    np.testing.assert_allclose(r2.json()["predictions"], expected, rtol=1e-6)


def test_invocations_csv_with_and_without_header(client, platform):
    frame = platform.fraud_frame.head(3)
    expected = platform.backends.model_registry.load_model("cdp-fraud").predict_proba(frame)
    headers = {**auth(platform.keys["all"]), "Content-Type": "text/csv"}
    no_header = frame.to_csv(index=False, header=False)
    r = client.post("/invocations", content=no_header, headers=headers)
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["predictions"], expected, rtol=1e-6)
    with_header = frame.to_csv(index=False)
    r2 = client.post("/invocations", content=with_header, headers={**headers, "Accept": "text/csv"})
    assert r2.headers["content-type"].startswith("text/csv")
    np.testing.assert_allclose([float(v) for v in r2.text.split()], expected, rtol=1e-6)


def test_invocations_encodes_raw_categories_like_training(client, platform):
    """Rows with the raw `mcc_group` column score as their one-hot encoding does."""
    raw = pd.DataFrame(
        [OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(None)).update(e) for e in platform.events[:1]]
    )
    spec = json.loads((platform.root / "fraud-v1" / "features.json").read_text())
    expected = platform.backends.model_registry.load_model("cdp-fraud").predict_proba(
        encode_features(raw, spec)
    )
    records = json.loads(raw.to_json(orient="records"))
    r = client.post("/invocations", json={"instances": records}, headers=auth(platform.keys["all"]))
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["predictions"], expected, rtol=1e-6)


def test_invocations_rejects_bad_payloads_and_needs_its_scope(client, platform):
    headers = auth(platform.keys["all"])
    assert client.post("/invocations", content=b"{not json", headers=headers).status_code == 400
    r = client.post("/invocations", json={"instances": [[1.0, 2.0]]}, headers=headers)
    assert r.status_code == 400 and "feature order" in r.json()["detail"]
    xml = {**headers, "Content-Type": "application/xml"}
    r = client.post("/invocations", content=b"<a/>", headers=xml)
    assert r.status_code == 415 and "content type" in r.json()["detail"]
    r = client.post("/invocations", json={"instances": [{"amount_cents": [1]}]}, headers=headers)
    assert r.status_code == 400 and "amount_cents" in r.json()["detail"]
    assert client.post("/invocations", json={"instances": [{}]}).status_code == 401
    r = client.post("/invocations", json={"instances": [{}]}, headers=auth(platform.keys["fraud"]))
    assert r.status_code == 403


# -- fraud scoring ---------------------------------------------------------------------------------------
def test_score_returns_probability_decision_reasons_and_version(client, platform):
    r = client.post("/v1/fraud/score", json={"transaction": transaction(platform)},
                    headers=auth(platform.keys["fraud"]))  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert 0.0 <= body["probability"] <= 1.0
    assert body["threshold"] == pytest.approx(0.3)  # the champion's evaluated alert threshold
    assert body["decision"] == ("alert" if body["probability"] >= 0.3 else "pass")
    assert body["model"] == "cdp-fraud" and body["model_version"] == 1
    assert 1 <= len(body["reasons"]) <= 3
    contributions = [x["contribution"] for x in body["reasons"]]
    assert contributions == sorted(contributions, reverse=True) and min(contributions) > 0
    assert all(x["feature"] in platform.fraud_frame.columns for x in body["reasons"])


def test_score_probability_equals_the_registry_model_on_the_same_features(client, platform):
    """The app's features (online state + one-hot) and booster give the registry model's probability."""
    txn = transaction(platform, 1)
    r = client.post("/v1/fraud/score", json={"transaction": txn}, headers=auth(platform.keys["fraud"]))
    app_state = client.app.state.serving
    row = {**txn, "ts": datetime.fromisoformat(txn["ts"])}
    features = app_state.card_features.features([row])
    spec = json.loads((platform.root / "fraud-v1" / "features.json").read_text())
    expected = platform.backends.model_registry.load_model("cdp-fraud").predict_proba(
        encode_features(pd.DataFrame(features), spec)
    )
    assert r.json()["probability"] == pytest.approx(float(expected[0]), rel=1e-6)


def test_request_encoding_equals_the_training_encoding(client, platform):
    """The per-request encoder gives exactly `encode_features` (one-hot, bools, missing values)."""
    from inference.fraud_scoring import encode_rows

    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(None))
    rows = [online.update(e) for e in platform.events]
    rows[3] = {**rows[3], "mcc_group": None, "amount_mean_1h": None}
    model = client.app.state.serving.holders["cdp-fraud"].current
    spec = json.loads((platform.root / "fraud-v1" / "features.json").read_text())
    expected = encode_features(pd.DataFrame(rows), spec).to_numpy(np.float32)
    np.testing.assert_array_equal(encode_rows(model, rows), expected)
    one_hot = [i for i, f in enumerate(spec["features"]) if f.startswith("mcc_group__")]
    assert np.isnan(expected).any() and (expected[:, one_hot] == 1).any()


def test_configured_threshold_wins(platform):
    with TestClient(make_app(platform, fraud_threshold=0.0)) as c:
        r = c.post("/v1/fraud/score", json={"transaction": transaction(platform)},
                   headers=auth(platform.keys["fraud"]))  # fmt: skip
        assert r.json()["threshold"] == 0.0 and r.json()["decision"] == "alert"


def test_scoring_never_changes_the_online_state(client, platform):
    """The public API scores against the cards' state and cannot write it (the stream records events):
    `record_event` is not a field any more, whatever the key's scopes."""
    card = platform.cards[2]
    store = platform.backends.online_store
    key = f"{FRAUD_VIEW.name}#{card}"
    before = store.get_many(store.keys())
    headers = auth(platform.keys["all"])
    txn = transaction(platform, 2, ts="2019-03-01T08:00:00")
    first = client.post("/v1/fraud/score", json={"transaction": txn}, headers=headers).json()
    again = client.post("/v1/fraud/score", json={"transaction": txn}, headers=headers).json()
    assert first["probability"] == again["probability"]
    r = client.post("/v1/fraud/score", json={"transaction": txn, "record_event": True}, headers=headers)
    assert r.status_code == 422
    batch = {"transactions": [txn], "record_events": True}
    assert client.post("/v1/fraud/score:batch", json=batch, headers=headers).status_code == 422
    assert store.get_many(store.keys()) == before and store.get_many([key]).get(key) == before.get(key)


def test_batch_scores_in_order(client, platform):
    txns = [transaction(platform, i, amount_cents=1000 * (i + 1)) for i in range(4)]
    r = client.post(
        "/v1/fraud/score:batch", json={"transactions": txns}, headers=auth(platform.keys["fraud"])
    )
    assert r.status_code == 200
    assert [s["txn_id"] for s in r.json()["scores"]] == [t["txn_id"] for t in txns]
    single = client.post(
        "/v1/fraud/score", json={"transaction": txns[0]}, headers=auth(platform.keys["fraud"])
    )
    assert r.json()["scores"][0]["probability"] == pytest.approx(single.json()["probability"])
    empty = client.post(
        "/v1/fraud/score:batch", json={"transactions": []}, headers=auth(platform.keys["fraud"])
    )
    assert empty.status_code == 422


@pytest.mark.parametrize(
    "change",
    [
        {"card_token": CARD_NUMBER},
        {"channel": "telepathy"},
        {"mcc": 123456},
        {"zip": EMAIL},
        {"errors": [EMAIL]},
        {"cardholder": "Jane Doe"},
    ],
)
def test_invalid_transactions_get_422_without_echoing_values(client, platform, change):
    r = client.post("/v1/fraud/score", json={"transaction": transaction(platform, **change)},
                    headers=auth(platform.keys["fraud"]))  # fmt: skip
    assert r.status_code == 422
    text = r.text
    for value in (CARD_NUMBER, EMAIL, "Jane Doe", "telepathy", "123456"):
        assert value not in text
    assert all(set(e) == {"loc", "msg", "type"} for e in r.json()["detail"])


# -- authentication, scopes, rate limits ------------------------------------------------------------------
ROUTES = [
    ("post", "/v1/fraud/score", "fraud:score"),
    ("post", "/v1/fraud/score:batch", "fraud:score"),
    ("get", "/v1/customers/{user}/profile", "customers:read"),
    ("get", "/v1/models", "models:read"),
    ("post", "/v1/models/reload", "models:admin"),
]


def _call(client, platform, method, path, headers):  # noqa: ANN001, ANN202
    path = path.replace("{user}", platform.profiled_users[0])
    body = None
    if path.endswith("score"):
        body = {"transaction": transaction(platform)}
    elif path.endswith("score:batch"):
        body = {"transactions": [transaction(platform)]}
    return client.request(method.upper(), path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_every_public_route_authenticates_and_checks_scopes(client, platform, method, path, scope):
    assert _call(client, platform, method, path, {}).status_code == 401
    assert _call(client, platform, method, path, auth("cdpk_nonsense")).status_code == 401
    forged = platform.keys["all"][:-4] + "AAAA"
    assert _call(client, platform, method, path, auth(forged)).status_code == 401
    assert _call(client, platform, method, path, auth(platform.keys["revoked"])).status_code == 401
    wrong = platform.keys["models"] if scope != "models:read" else platform.keys["fraud"]
    assert _call(client, platform, method, path, auth(wrong)).status_code == 403
    ok = _call(client, platform, method, path, {"X-API-Key": platform.keys["all"]})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(("method", "path", "scope"), ROUTES)
def test_every_public_route_is_rate_limited_per_key(platform, method, path, scope):
    clock = [0.0]
    app = create_app(
        backends=platform.backends,
        config=ServingConfig(reload_seconds=0.0, rate_per_second=1.0, rate_burst=2),
        key_store=platform.key_store,
        clock=lambda: clock[0],
    )
    with TestClient(app) as c:
        statuses = [
            _call(c, platform, method, path, auth(platform.keys["all"])).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        limited = _call(c, platform, method, path, auth(platform.keys["all"]))
        assert limited.headers["Retry-After"] == "1"
        other = _call(c, platform, "get", "/v1/models", auth(platform.keys["models"]))
        assert other.status_code == 200  # another key has its own bucket
        clock[0] += 1.0
        assert _call(c, platform, method, path, auth(platform.keys["all"])).status_code == 200


# -- customers and models ---------------------------------------------------------------------------------
def test_profile_has_segment_name_clv_and_versions(client, platform):
    headers = auth(platform.keys["all"])
    online_user, store_user = platform.profiled_users
    a = client.get(f"/v1/customers/{online_user}/profile", headers=headers).json()
    b = client.get(f"/v1/customers/{store_user}/profile", headers=headers).json()
    assert a["segment"] == {"id": 0, "name": "online shoppers"}
    assert b["segment"] == {"id": 1, "name": "big spenders in store"}
    assert b["clv_12m_cents"] > a["clv_12m_cents"] >= 0
    assert a["model_versions"] == {"cdp-clv": 1, "cdp-segmentation": 1}
    assert a["user_token"] == online_user and a["as_of"].startswith("2019-03-01")
    assert "gender" not in a and "net_spend_365d" not in json.dumps(a)


def test_profile_404_for_unknown_and_422_for_malformed_tokens(client, platform):
    headers = auth(platform.keys["all"])
    unknown = token("usr_", random.Random(99))
    assert client.get(f"/v1/customers/{unknown}/profile", headers=headers).status_code == 404
    r = client.get(f"/v1/customers/{CARD_NUMBER}/profile", headers=headers)
    assert r.status_code == 422 and CARD_NUMBER not in r.text


def test_models_lists_the_champions(client, platform):
    r = client.get("/v1/models", headers=auth(platform.keys["models"]))
    models = {m["name"]: m for m in r.json()["models"]}
    assert set(models) == {"cdp-fraud", "cdp-clv", "cdp-segmentation"}
    assert models["cdp-fraud"]["version"] == 1 and models["cdp-fraud"]["kind"] == "classification"
    assert models["cdp-segmentation"]["kind"] == "segmentation" and models["cdp-clv"]["kind"] == "regression"
    assert models["cdp-fraud"]["features"] == platform.fraud_frame.shape[1]


# -- OpenAPI ----------------------------------------------------------------------------------------------
def test_openapi_document_is_valid_and_documents_security(client):
    from openapi_spec_validator import validate

    doc = client.get("/openapi.json").json()
    validate(doc)
    assert {"HTTPBearer", "APIKeyHeader"} <= set(doc["components"]["securitySchemes"])
    score = doc["paths"]["/v1/fraud/score"]["post"]
    assert {"200", "401", "403", "422", "429"} <= set(score["responses"])
    assert "/v1/fraud/score:batch" in doc["paths"] and "/invocations" in doc["paths"]
    assert client.get("/docs").status_code == 200 and "swagger" in client.get("/docs").text.lower()


# -- Lambda (API Gateway HTTP API, payload v2) --------------------------------------------------------------
def api_gateway_v2_event(method: str, path: str, headers: dict[str, str], body: dict | None) -> dict:
    raw = json.dumps(body).encode() if body is not None else b""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", **{k.lower(): v for k, v in headers.items()}},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "10.0.0.1",
                "userAgent": "test",
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Feb/2019:12:00:00 +0000",
            "timeEpoch": 1549022400000,
        },  # fmt: skip
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }


def test_the_same_app_answers_api_gateway_v2_events_through_mangum(platform):
    from inference.lambda_handler import build_handler

    handler = build_handler(make_app(platform))
    event = api_gateway_v2_event(
        "POST", "/v1/fraud/score", auth(platform.keys["fraud"]), {"transaction": transaction(platform)}
    )
    response = handler(event, None)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["model"] == "cdp-fraud" and 0 <= body["probability"] <= 1
    denied = handler(api_gateway_v2_event("GET", "/v1/models", {}, None), None)
    assert denied["statusCode"] == 401


# -- no personal data in responses or the access log -------------------------------------------------------
def test_access_log_has_key_ids_and_no_keys_or_pii(platform, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="cdp.inference.access")
    responses = []
    with TestClient(make_app(platform)) as c:
        headers = auth(platform.keys["all"])
        responses.append(
            c.post("/v1/fraud/score", json={"transaction": transaction(platform)}, headers=headers)
        )
        responses.append(c.get(f"/v1/customers/{platform.profiled_users[0]}/profile", headers=headers))
        responses.append(c.post("/v1/fraud/score", json={"transaction": transaction(platform, zip=EMAIL)},
                                headers=headers))  # fmt: skip
        responses.append(c.get(f"/v1/customers/{CARD_NUMBER}/profile", headers=headers))
        responses.append(c.get("/v1/models"))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cdp.inference.access"]
    assert [line["status"] for line in lines] == [200, 200, 422, 422, 401]
    key_id = platform.key_store.list()[0].key_id
    assert lines[0]["key_id"] == key_id and lines[-1]["key_id"] is None
    assert lines[1]["route"] == "/v1/customers/{token}/profile"
    dump = tmp_path / "dump.log"
    dump.write_text("\n".join([*(r.getMessage() for r in caplog.records), *(r.text for r in responses)]))
    for key in platform.keys.values():
        secret = key.split("_", 2)[2]  # the whole secret after the key id (it may itself hold "_")
        assert key not in dump.read_text() and secret not in dump.read_text()
    scanner = LeakScanner(known_values=[EMAIL, "Jane Doe"])
    assert list(scanner.scan_file(dump)) == []
    control = tmp_path / "control.log"  # the same scan does see these values when they are there
    control.write_text(f"{CARD_NUMBER} {EMAIL}")
    assert {f.kind for f in scanner.scan_file(control)} >= {"card_number", "known_value"}


# -- hot reload (last: changes the champion, then puts it back) ---------------------------------------------
def test_new_champion_is_served_without_restart_or_dropped_requests(platform):
    registry = platform.backends.model_registry
    app = make_app(platform, reload_seconds=0.2)
    headers = auth(platform.keys["fraud"])
    body = {"transaction": transaction(platform)}
    statuses: list[int] = []
    versions: list[int] = []
    stop = threading.Event()
    with TestClient(app) as c:

        def hammer() -> None:
            while not stop.is_set():
                r = c.post("/v1/fraud/score", json=body, headers=headers)
                statuses.append(r.status_code)
                if r.status_code == 200:
                    versions.append(r.json()["model_version"])

        worker = threading.Thread(target=hammer)
        worker.start()
        try:
            from cdp.registry.scoring import load_scoring_model

            features = load_scoring_model(platform.fraud_v2_dir).features
            registry.register("cdp-fraud", platform.fraud_v2_dir, {"alert_threshold": 0.4}, {},
                              Lineage("sha256:test", features, "test", "run-2"))  # fmt: skip
            registry.approve("cdp-fraud", 2, "tester", "better model")
            deadline = datetime.now() + timedelta(seconds=20)
            while (not versions or versions[-1] != 2) and datetime.now() < deadline:
                stop.wait(0.1)
        finally:
            stop.set()
            worker.join()
        assert set(statuses) == {200}  # no request failed during the swap
        assert versions[0] == 1 and versions[-1] == 2
        assert versions == sorted(versions)  # never back to the old model once swapped
        r = c.post("/v1/fraud/score", json=body, headers=headers)
        assert r.json()["threshold"] == pytest.approx(0.4)
        # rejecting the champion stops serving it (503), a forced reload picks the change up at once
        registry.reject("cdp-fraud", 2, "tester", "test rollback")
        c.app.state.serving.holders["cdp-fraud"].poll_seconds = 3600
        reload = c.post("/v1/models/reload", headers=auth(platform.keys["all"]))
        fraud = next(m for m in reload.json()["models"] if m["name"] == "cdp-fraud")
        assert fraud["version"] is None
        degraded = c.post("/v1/fraud/score", json=body, headers=headers)  # the rules answer, and say so
        assert degraded.status_code == 200
        assert degraded.json()["model"] == "rules" and degraded.json()["model_version"] == 0
        registry.approve("cdp-fraud", 1, "tester", "restore")
        c.post("/v1/models/reload", headers=auth(platform.keys["all"]))
        assert c.post("/v1/fraud/score", json=body, headers=headers).json()["model_version"] == 1


def test_key_strings_are_random_and_well_formed():
    from cdp.apikeys.keys import mint_key, parse_key

    minted = {mint_key()[0] for _ in range(20)}
    assert len(minted) == 20
    assert all(parse_key(k) is not None for k in minted)
    assert parse_key("cdpk_" + "".join(random.choices(string.ascii_letters, k=20))) is None
