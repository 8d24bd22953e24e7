"""Inference API latency, in-process: one fraud score through the whole app vs the raw model (the floor).

Run: `python -m bench.bench_api`. Prints one table and writes `bench/results/api.json`.
A 200-tree depth-6 booster is trained on the fraud view's real online features (random events), registered
and approved in a temporary MLflow registry. Measured per single-transaction request:
- floor: `booster.predict` on one already-encoded row (no features, no HTTP);
- floor + SHAP: the same row's probability and `pred_contribs` (what a reason-coded score needs);
- pipeline: online features from the card's state + one-hot encoding + probability + SHAP, no HTTP;
- API: `POST /v1/fraud/score` through `TestClient` (auth, rate limit, validation, access log, JSON).
The HTTP-over-localhost load test is `bench/bench_api_http.py`.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from bench.harness import print_table, write_result
from bench.serving_fixture import DEPTH, ROUNDS, load_booster, register_champion

WARMUP, REQUESTS = 50, 1_000


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
    from cdp.settings import Settings
    from inference.app import create_app
    from inference.config import ServingConfig
    from inference.fraud_scoring import encode, score_frame

    root = Path(tempfile.mkdtemp(prefix="bench-api-"))
    backends = Backends(Settings(home=root / "home"))
    champion = register_champion(backends, root / "fraud")
    events, x, features = champion.events, champion.encoded, champion.features
    rng = random.Random(7)
    store = SqliteApiKeyStore(root / "keys.sqlite3")
    key = create_key(store, "bench", ["fraud:score"])[0]
    config = ServingConfig(reload_seconds=0, rate_per_second=1e9, rate_burst=10**9)
    app = create_app(backends=backends, config=config, key_store=store)

    booster = load_booster(champion)
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
            "notes": "in-process (TestClient); the HTTP-over-localhost load test is bench_api_http",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
