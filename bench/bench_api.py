"""Inference API latency, in-process: one fraud score through the whole app vs the raw model (the floor).

Run: `python -m bench.bench_api`. Prints one table and writes `bench/results/api.json`.
A 200-tree depth-6 booster is trained on the fraud view's real online features (random events), registered
and approved in a temporary MLflow registry. Measured per single-transaction request:
- floor: `booster.predict` on one already-encoded row (no features, no HTTP);
- floor + SHAP: the same row's probability and `pred_contribs` (what a reason-coded score needs);
- pipeline: online features from the card's state + one-hot encoding + probability + SHAP, no HTTP;
- API: `POST /v1/fraud/score` through `TestClient` (auth, rate limit, validation, access log, JSON).
The HTTP-over-localhost load test is not part of this benchmark yet.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench.harness import print_table, write_result

EVENTS, CARDS, ROUNDS, DEPTH = 3_000, 50, 200, 6
WARMUP, REQUESTS = 50, 1_000
B32 = "abcdefghijklmnopqrstuvwxyz234567"


def _token(prefix: str, rng: random.Random) -> str:
    return prefix + "".join(rng.choice(B32) for _ in range(26))


def _events(rng: random.Random) -> list[dict]:
    cards = [_token("crd_", rng) for _ in range(CARDS)]
    users = {c: _token("usr_", rng) for c in cards}
    start = datetime(2019, 1, 1)
    out = []
    for i in range(EVENTS):
        card = rng.choice(cards)
        online = rng.random() < 0.3
        out.append({
            "txn_id": f"{card[4:]}-{i + 1}", "user_token": users[card], "card_token": card,
            "ts": start + timedelta(minutes=17 * i), "amount_cents": int(rng.lognormvariate(8, 1.2)),
            "channel": "online" if online else rng.choice(("swipe", "chip")),
            "merchant_id": rng.randint(1, 500), "merchant_city": None if online else "Reno",
            "merchant_state": None if online else "NV", "zip": None if online else "89501",
            "mcc": rng.choice((5411, 7995, 5812, 5541, 5732, 3000)),
            "errors": ["Bad CVV"] if rng.random() < 0.03 else None,
        })  # fmt: skip
    return out


def _train(folder: Path, events: list[dict]) -> np.ndarray:
    import xgboost

    from cdp.online.local import LocalOnlineStore
    from features.fraud import FRAUD_VIEW
    from features.online import OnlineFeatures
    from training.fraud.preprocess import encode_features, feature_spec

    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(None))
    frame = pd.DataFrame([online.update(e) for e in events])
    frame["split"] = "train"
    label = ((frame["amount_cents"] > 8000) & (frame["is_new_merchant"].astype(bool))).astype(int)
    spec = feature_spec(frame)
    x = encode_features(frame, spec).to_numpy(np.float32)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": DEPTH, "eta": 0.1, "seed": 7, "nthread": 1},
        xgboost.DMatrix(x, label=label, feature_names=spec["features"]),
        ROUNDS,
    )
    folder.mkdir(parents=True)
    booster.save_model(str(folder / "model.ubj"))
    (folder / "features.json").write_text(
        json.dumps({"features": spec["features"], "one_hot": spec["one_hot"]})
    )
    return x


def _latencies(fn: Callable[[int], object], n: int) -> np.ndarray:
    for i in range(WARMUP):
        fn(i)
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out[i] = time.perf_counter() - t0
    return out * 1000.0


def _row(label: str, ms: np.ndarray, floor_p50: float) -> dict:
    p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
    return {
        "path": label,
        "p50_ms": p50,
        "p99_ms": p99,
        "mean_ms": float(ms.mean()),
        "x_floor_p50": p50 / floor_p50,
    }


def main() -> None:
    import xgboost
    from fastapi.testclient import TestClient

    from cdp.apikeys.commands import create_key
    from cdp.apikeys.sqlite import SqliteApiKeyStore
    from cdp.backends import Backends
    from cdp.registry import Lineage
    from cdp.settings import Settings
    from inference.app import create_app
    from inference.config import ServingConfig
    from inference.fraud_scoring import encode, score_frame

    root = Path(tempfile.mkdtemp(prefix="bench-api-"))
    rng = random.Random(7)
    events = _events(rng)
    x = _train(root / "fraud", events)
    backends = Backends(Settings(home=root / "home"))
    registry = backends.model_registry
    features = tuple(json.loads((root / "fraud" / "features.json").read_text())["features"])
    registry.register(
        "cdp-fraud", root / "fraud", {"alert_threshold": 0.5}, {}, Lineage("b", features, "b", "b")
    )
    registry.approve("cdp-fraud", 1, "bench", "bench")
    store = SqliteApiKeyStore(root / "keys.sqlite3")
    key = create_key(store, "bench", ["fraud:score"])[0]
    config = ServingConfig(reload_seconds=0, rate_per_second=1e9, rate_burst=10**9)
    app = create_app(backends=backends, config=config, key_store=store)

    booster = xgboost.Booster()
    booster.load_model(str(root / "fraud" / "model.ubj"))
    rows = x[rng.sample(range(len(x)), 200)]

    def floor(i: int) -> None:
        booster.predict(xgboost.DMatrix(rows[i % 200 : i % 200 + 1], feature_names=list(features)))

    def floor_shap(i: int) -> None:
        m = xgboost.DMatrix(rows[i % 200 : i % 200 + 1], feature_names=list(features))
        booster.predict(m)
        booster.predict(m, pred_contribs=True)

    requests = []
    for _ in range(200):
        e = dict(events[rng.randrange(len(events))])
        e["ts"] = (e["ts"] + timedelta(days=200)).isoformat()
        requests.append({"transaction": e})

    with TestClient(app) as client:
        serving = app.state.serving
        model = serving.holders["cdp-fraud"].current

        def pipeline(i: int) -> None:
            t = requests[i % 200]["transaction"]
            feats = serving.card_features.features([{**t, "ts": datetime.fromisoformat(t["ts"])}])
            score_frame(model, encode(model, feats))

        headers = {"Authorization": f"Bearer {key}"}

        def api(i: int) -> None:
            r = client.post("/v1/fraud/score", json=requests[i % 200], headers=headers)
            assert r.status_code == 200, r.status_code

        floor_ms = _latencies(floor, REQUESTS)
        floor_p50 = float(np.percentile(floor_ms, 50))
        results = [
            _row("raw booster.predict, 1 encoded row (floor)", floor_ms, floor_p50),
            _row("raw predict + pred_contribs (SHAP)", _latencies(floor_shap, REQUESTS), floor_p50),
            _row("features + encode + predict + SHAP (no HTTP)", _latencies(pipeline, REQUESTS), floor_p50),
            _row("POST /v1/fraud/score via TestClient", _latencies(api, REQUESTS), floor_p50),
        ]
    print_table(f"Fraud score latency ({REQUESTS} requests, {ROUNDS} trees depth {DEPTH})", results)
    path = write_result(
        "api",
        {
            "model": {"trees": ROUNDS, "max_depth": DEPTH, "features": len(features)},
            "requests": REQUESTS,
            "results": results,
            "notes": "in-process (TestClient); the HTTP-over-localhost load test is not measured yet",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
