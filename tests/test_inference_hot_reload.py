"""Champion hot reload under load: a real uvicorn server on 127.0.0.1 (a free port) and the stream handler.

The registry holds fraud v1 (approved, threshold 0.3) and v2 (pending, threshold 0.4, other trees). While
client threads keep scoring the same transactions, v2 is approved. Checks:
- every request gets 200 (none fails during the swap);
- scoring switches to v2 within the holder's poll interval plus a load margin (`SWITCH_BOUND_SECONDS`),
  and each client never goes back to v1 once it saw v2;
- every answer is wholly one version's: model version, threshold and probability equal what that version
  gives the transaction when loaded on its own (no request answered by a half-loaded model);
- the stream handler (`run_stream --follow`) scores the events put after the approval with v2.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
import uvicorn

from cdp.apikeys.commands import create_key
from cdp.apikeys.sqlite import SqliteApiKeyStore
from cdp.backends import Backends
from cdp.registry import Lineage
from cdp.registry.scoring import load_scoring_model
from cdp.settings import Settings
from cdp.stream import Record, put_all
from cdp.streaming import records
from inference.app import create_app
from inference.card_features import CardFeatures
from inference.config import ServingConfig
from inference.fraud_scoring import decision_threshold, encode_rows, score_frame
from inference.loaded import load_version
from inference.streaming.runner import run_stream
from tests.test_inference_app import random_events, token, train_fraud_model, txn_id_of

POLL_SECONDS = 0.5  # the holder's reload period in these tests
LOAD_MARGIN_SECONDS = 5.0  # registry lookup + model download and load on a busy 2-core machine
SWITCH_BOUND_SECONDS = POLL_SECONDS + LOAD_MARGIN_SECONDS
CLIENTS = 3
THRESHOLDS = {1: 0.3, 2: 0.4}


@dataclass
class Registry:
    backends: Backends
    key_store: SqliteApiKeyStore
    key: str
    cards: list[str]
    users: dict[str, str]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """fraud v1 and v2 registered (one platform for the module: the MLflow registry is slow to create)."""
    tmp_path = tmp_path_factory.mktemp("hot-reload")
    backends = Backends(Settings(home=tmp_path / "home", serve_reload_seconds=POLL_SECONDS))
    rng = random.Random(3)
    cards = [token("crd_", rng) for _ in range(4)]
    users = {c: token("usr_", rng) for c in cards}
    events = random_events(rng, cards, users, 400)
    for version in (1, 2):
        folder = tmp_path / f"fraud-v{version}"
        train_fraud_model(folder, events, seed=version)
        lineage = Lineage("sha256:test", load_scoring_model(folder).features, "test", f"run-{version}")
        metrics = {"alert_threshold": THRESHOLDS[version]}
        backends.model_registry.register("cdp-fraud", folder, metrics, {}, lineage)
    key_store = SqliteApiKeyStore(tmp_path / "keys.sqlite3")
    key = create_key(key_store, "hot reload", ["fraud:score"])[0]
    return Registry(backends, key_store, key, cards, users)


@pytest.fixture
def registry(platform: Registry) -> Registry:
    """The platform with v1 as the champion (each test approves v2)."""
    platform.backends.model_registry.approve("cdp-fraud", 1, "tester", "first champion")
    return platform


def transaction(reg: Registry, i: int) -> dict:
    card = reg.cards[i % len(reg.cards)]
    return {
        "txn_id": txn_id_of(card, 50_000 + i),
        "user_token": reg.users[card],
        "card_token": card,
        "ts": f"2019-02-0{1 + i % 5}T12:00:00",
        "amount_cents": 1_000 + 7_919 * i,
        "channel": ("online", "chip", "swipe")[i % 3],
        "merchant_id": 7 + i,
        "merchant_city": None,
        "merchant_state": None,
        "zip": None,
        "mcc": (7995, 5411, 5812)[i % 3],
        "errors": ["Bad CVV"] if i % 4 == 0 else None,
    }


def expected_probabilities(reg: Registry, txns: list[dict]) -> dict[int, dict[str, float]]:
    """Each version's probability for each transaction, from that version loaded on its own."""
    features = CardFeatures(reg.backends.online_store).features(
        [{**t, "ts": datetime.fromisoformat(t["ts"])} for t in txns]
    )
    out = {}
    for version in (1, 2):
        model = load_version(reg.backends.model_registry.get("cdp-fraud", version), reg.backends.object_store)
        assert decision_threshold(model, None) == THRESHOLDS[version]
        scores = score_frame(model, encode_rows(model, features))
        out[version] = {t["txn_id"]: s.probability for t, s in zip(txns, scores, strict=True)}
    assert any(abs(out[1][t] - out[2][t]) > 1e-4 for t in out[1])  # the versions are distinguishable
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving `app` on 127.0.0.1 in a thread."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Answer:
    client: int
    sent: float  # monotonic time the request was sent
    status: int
    body: dict


def test_server_switches_to_the_new_champion_without_failed_or_mixed_answers(registry: Registry) -> None:
    txns = [transaction(registry, i) for i in range(8)]
    expected = expected_probabilities(registry, txns)
    config = ServingConfig(reload_seconds=POLL_SECONDS, rate_per_second=10_000.0, rate_burst=10_000)
    app = create_app(backends=registry.backends, config=config, key_store=registry.key_store)
    answers: list[Answer] = []
    stop = threading.Event()
    headers = {"Authorization": f"Bearer {registry.key}"}

    def client(n: int, base: str) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            i = n
            while not stop.is_set():
                sent = time.monotonic()
                r = http.post("/v1/fraud/score", json={"transaction": txns[i % len(txns)]})
                answers.append(Answer(n, sent, r.status_code, r.json() if r.status_code == 200 else {}))
                i += CLIENTS

    with Server(app) as base:
        workers = [threading.Thread(target=client, args=(n, base)) for n in range(CLIENTS)]
        for w in workers:
            w.start()
        try:
            time.sleep(1.0)  # v1 under load first
            registry.backends.model_registry.approve("cdp-fraud", 2, "tester", "better model")
            approved = time.monotonic()
            deadline = approved + SWITCH_BOUND_SECONDS + 5
            while time.monotonic() < deadline and not any(a.body.get("model_version") == 2 for a in answers):
                time.sleep(0.05)
            time.sleep(1.0)  # v2 under load
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=30)

    assert answers and {a.status for a in answers} == {200}  # zero failed requests
    first_v2 = min(a.sent for a in answers if a.body["model_version"] == 2)
    switch = first_v2 - approved
    print(f"{len(answers)} requests from {CLIENTS} clients; switched {switch:.2f} s after the approval")
    assert switch <= SWITCH_BOUND_SECONDS
    assert any(a.body["model_version"] == 1 for a in answers if a.sent < approved)
    assert all(a.body["model_version"] == 2 for a in answers if a.sent > first_v2 + 1.0)
    for n in range(CLIENTS):  # once a client saw v2 it never sees v1 again
        versions = [a.body["model_version"] for a in sorted(answers, key=lambda a: a.sent) if a.client == n]
        assert versions == sorted(versions) and versions[-1] == 2
    for a in answers:  # each answer wholly from one version
        version = a.body["model_version"]
        assert a.body["model"] == "cdp-fraud" and version in (1, 2)
        assert a.body["threshold"] == THRESHOLDS[version]
        assert a.body["probability"] == pytest.approx(expected[version][a.body["txn_id"]], rel=1e-6)
        assert a.body["decision"] == ("alert" if a.body["probability"] >= THRESHOLDS[version] else "pass")


def stream_rows(reg: Registry, first: int, n: int, start: datetime) -> list[dict]:
    rows = []
    for i in range(first, first + n):
        card = reg.cards[i % len(reg.cards)]
        ts = start + timedelta(minutes=11 * i)
        rows.append(
            {
                "txn_id": txn_id_of(card, 70_000 + i),
                "user_token": reg.users[card],
                "card_token": card,
                "ts": ts,
                "amount_cents": 500 + 3_001 * (i % 17),
                "channel": "online" if i % 3 == 0 else "chip",
                "merchant_id": 3 + i % 5,
                "merchant_city": None if i % 3 == 0 else "Reno",
                "merchant_state": None if i % 3 == 0 else "NV",
                "zip": None if i % 3 == 0 else "89501",
                "mcc": 7995 if i % 3 == 0 else 5411,
                "errors": None,
                "is_fraud": False,
                "event_seq": 70_000 + i,
                "year": ts.year,
                "month": ts.month,
            }
        )
    return rows


def scored_versions(backends: Backends) -> dict[str, int]:
    try:
        rows = backends.catalog.query("SELECT txn_id, model_version FROM transactions_scored").to_pylist()
    except Exception:  # noqa: BLE001 - no file landed yet
        return {}
    return {r["txn_id"]: r["model_version"] for r in rows}


def wait_for(predicate, seconds: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_stream_handler_scores_events_after_an_approval_with_the_new_version(registry: Registry) -> None:
    backends = registry.backends
    before = stream_rows(registry, 0, 40, datetime(2019, 6, 1))
    after = stream_rows(registry, 40, 40, datetime(2019, 6, 1))
    stop = threading.Event()
    runner = threading.Thread(
        target=run_stream, kwargs={"backends": backends, "follow": True, "idle_seconds": 0.1, "stop": stop}
    )
    runner.start()
    try:
        put_all(backends.stream, [Record(r["card_token"], records.encode(r)) for r in before])
        assert wait_for(lambda: len(scored_versions(backends)) == len(before), 60)
        backends.model_registry.approve("cdp-fraud", 2, "tester", "better model")
        time.sleep(SWITCH_BOUND_SECONDS)  # the handler's holder polls every POLL_SECONDS
        put_all(backends.stream, [Record(r["card_token"], records.encode(r)) for r in after])
        assert wait_for(lambda: len(scored_versions(backends)) == len(before) + len(after), 60)
    finally:
        stop.set()
        runner.join(timeout=30)
    versions = scored_versions(backends)
    assert {versions[r["txn_id"]] for r in before} == {1}
    assert {versions[r["txn_id"]] for r in after} == {2}
    thresholds = backends.catalog.query("SELECT DISTINCT model_version, threshold FROM transactions_scored")
    assert sorted(map(tuple, thresholds.to_pandas().to_numpy().tolist())) == [(1, 0.3), (2, 0.4)]
