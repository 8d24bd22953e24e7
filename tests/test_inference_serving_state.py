"""Serving under abuse, over the app of tests/test_inference_app.py (same platform fixture):

- profiles come from memory: 200 concurrent profile calls over real HTTP run no catalog query, finish
  quickly, and `/ping` answers during them; a new segmentation champion rebuilds them in the background;
- transactions dated outside the accepted window get 422 (naming no value);
- expired API keys get 401 (logged by key id, never the key); a rotated key's old secret works during the
  overlap only;
- with no fraud champion the API answers from the degraded rules and counts the decisions.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from cdp.apikeys.commands import create_key, rotate_key
from cdp.metrics.port import MetricQuery, Statistic
from inference.degraded import DEGRADED_DECISIONS, SERVING_NAMESPACE
from tests.test_inference_app import auth, make_app, platform, transaction  # noqa: F401 - the fixture

CONCURRENT = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server(platform):  # noqa: ANN201, F811
    """The app under uvicorn on 127.0.0.1 in a thread: (base URL, app); room for 200 requests in flight
    (the per-worker bound's 503 is tested in test_inference_bounds.py)."""
    app = make_app(platform, max_concurrency=256)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.slow
def test_concurrent_profile_calls_are_served_from_memory_and_never_block_ping(http_server, platform):  # noqa: F811
    base, app = http_server
    queries: list[str] = []
    catalog = platform.backends.catalog
    original = catalog.query

    def counting(sql, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        queries.append(sql)
        return original(sql, *args, **kwargs)

    catalog.query = counting
    headers = auth(platform.keys["all"])
    users = platform.profiled_users
    pings: list[tuple[int, float]] = []
    stop = threading.Event()

    def ping() -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            while not stop.is_set():
                started = time.perf_counter()
                pings.append((c.get("/ping").status_code, time.perf_counter() - started))
                time.sleep(0.02)

    async def profiles() -> list[int]:
        limits = httpx.Limits(max_connections=CONCURRENT)
        async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as c:
            calls = [c.get(f"/v1/customers/{users[i % 2]}/profile") for i in range(CONCURRENT)]
            return [r.status_code for r in await asyncio.gather(*calls)]

    pinger = threading.Thread(target=ping)
    try:
        pinger.start()
        started = time.perf_counter()
        statuses = asyncio.run(profiles())  # one thread: the clients do not compete with the server
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        pinger.join()
        del catalog.query  # the instance attribute: back to the class method
    assert statuses == [200] * CONCURRENT
    assert queries == []  # no lake scan per request
    assert elapsed < 15.0
    assert pings and all(status == 200 for status, _ in pings)
    # the server shares this process (and a loaded machine): the bound is loose, the point is that /ping
    # keeps answering (a lake scan per profile call stopped it for minutes)
    assert max(seconds for _, seconds in pings) < 10.0


def test_a_new_segmentation_champion_rebuilds_the_profiles_in_the_background(platform):  # noqa: F811
    from cdp.registry import Lineage
    from cdp.registry.scoring import load_scoring_model

    registry = platform.backends.model_registry
    folder = platform.root / "segmentation"
    headers = auth(platform.keys["all"])
    with TestClient(make_app(platform)) as c:
        url = f"/v1/customers/{platform.profiled_users[0]}/profile"
        assert c.get(url, headers=headers).json()["model_versions"]["cdp-segmentation"] == 1
        features = load_scoring_model(folder).features
        version = registry.register(
            "cdp-segmentation", folder, {"silhouette": 0.4}, {}, Lineage("sha256:test", features, "t", "r2")
        ).version
        registry.approve("cdp-segmentation", version, "tester", "new segmentation")
        try:
            c.post("/v1/models/reload", headers=headers)
            assert c.app.state.serving.profiles.wait_idle()
            served = c.get(url, headers=headers).json()
            assert served["model_versions"]["cdp-segmentation"] == version
            assert served["segment"] == {"id": 0, "name": "online shoppers"}
        finally:
            registry.approve("cdp-segmentation", 1, "tester", "restore")


@pytest.mark.parametrize("ts", ["9999-12-31T00:00:00", "1970-01-01T00:00:00", "three days ahead"])
def test_transactions_outside_the_time_window_get_422(platform, ts):  # noqa: F811
    if ts == "three days ahead":  # computed here: a test id must be the same in every test process
        ts = (datetime.now() + timedelta(days=3)).isoformat()
    headers = auth(platform.keys["fraud"])
    with TestClient(make_app(platform)) as c:
        r = c.post("/v1/fraud/score", json={"transaction": transaction(platform, ts=ts)}, headers=headers)
        assert r.status_code == 422 and ts[:4] not in r.text
        batch = {"transactions": [transaction(platform), transaction(platform, 1, ts=ts)]}
        r = c.post("/v1/fraud/score:batch", json=batch, headers=headers)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "transactions", 1, "ts"]
        ok = c.post("/v1/fraud/score", json={"transaction": transaction(platform)}, headers=headers)
        assert ok.status_code == 200


def test_expired_keys_are_refused_and_logged_by_id_only(platform, caplog):  # noqa: F811
    store = platform.key_store
    key, record = create_key(store, "short lived", ["models:read"], expires_in=timedelta(days=1))
    with TestClient(make_app(platform)) as c:
        assert c.get("/v1/models", headers=auth(key)).status_code == 200
        store.rotate(record.key_id, record.secret_sha256, datetime(2020, 1, 1), datetime(2020, 1, 1))
        caplog.set_level(logging.INFO, logger="cdp.inference.auth")
        r = c.get("/v1/models", headers=auth(key))
        assert r.status_code == 401 and r.json() == {"detail": "this API key has expired"}
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "cdp.inference.auth"]
    assert logged == [f"refused expired API key {record.key_id}"]
    assert key.split("_")[-1] not in caplog.text


def test_a_rotated_key_works_with_both_secrets_during_the_overlap_only(platform):  # noqa: F811
    store = platform.key_store
    old_key, record = create_key(store, "rotating", ["models:read"], expires_in=timedelta(days=90))
    new_key, _ = rotate_key(store, record.key_id, overlap=timedelta(hours=1), expires_in=timedelta(days=90))
    with TestClient(make_app(platform)) as c:
        assert c.get("/v1/models", headers=auth(old_key)).status_code == 200
        assert c.get("/v1/models", headers=auth(new_key)).status_code == 200
        current = store.get(record.key_id)
        ended = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)
        store.rotate(record.key_id, current.secret_sha256, current.expires_at, ended)  # the overlap is over
        assert c.get("/v1/models", headers=auth(old_key)).status_code == 401
        assert c.get("/v1/models", headers=auth(new_key)).status_code == 200


def test_without_a_fraud_champion_the_api_answers_from_the_rules_and_counts_them(platform):  # noqa: F811
    headers = auth(platform.keys["fraud"])
    risky = transaction(platform, 3, amount_cents=900_000, channel="online", errors=["Bad CVV"])
    with TestClient(make_app(platform, fraud_model="cdp-none")) as c:
        r = c.post("/v1/fraud/score", json={"transaction": risky}, headers=headers)
        batch = c.post("/v1/fraud/score:batch", json={"transactions": [risky, risky]}, headers=headers)
    assert r.status_code == 200 and batch.status_code == 200
    body = r.json()
    assert body["model"] == "rules" and body["model_version"] == 0 and body["threshold"] == 0.5
    assert body["decision"] == ("alert" if body["reasons"] else "pass")
    assert all(s["model"] == "rules" for s in batch.json()["scores"])
    query = MetricQuery(SERVING_NAMESPACE, DEGRADED_DECISIONS, Statistic.SUM, 60, {"Model": "cdp-none"})
    now = datetime.now(UTC)
    points = platform.backends.metrics.get_statistics(
        query, now - timedelta(hours=1), now + timedelta(hours=1)
    )
    assert sum(p.value for p in points) == 3  # published when the app stops
