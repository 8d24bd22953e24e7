"""The scoring-endpoint contract, run against both adapters over one tiny trained fraud champion:

- `InProcessEndpoint` with the real fraud champion scorer (`FraudChampionScorer` over a `ModelHolder`);
- `SageMakerEndpoint` whose `sagemaker-runtime`-compatible client POSTs the body to the inference app's
  SageMaker `/invocations` route, served by uvicorn on 127.0.0.1 (the container contract).

Checks: one score per row in input order, probabilities in [0, 1], one model version per batch, the same
probabilities from both adapters, the empty batch, and `EndpointError` for a malformed answer. Then
`Backends.scoring_endpoint` picks the adapter from the settings.
"""

from __future__ import annotations

import io
import json
import random
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from cdp.backends import Backends
from cdp.online.local import LocalOnlineStore
from cdp.registry import Lineage
from cdp.registry.scoring import load_scoring_model
from cdp.scoring.inprocess import InProcessEndpoint
from cdp.scoring.port import EndpointError, Score, ScoredBatch, ScoringEndpoint
from cdp.scoring.sagemaker import SageMakerEndpoint
from cdp.settings import Settings
from features.fraud import FRAUD_VIEW
from features.online import OnlineFeatures
from inference.app import create_app
from inference.config import ServingConfig
from inference.holder import ModelHolder
from inference.loaded import load_version
from inference.streaming.champion_scorer import FraudChampionScorer
from tests.test_inference_app import random_events, token, train_fraud_model

MODEL = "cdp-fraud"


@dataclass
class Champion:
    backends: Backends
    holder: ModelHolder
    rows: list[dict[str, Any]]  # online feature rows of the fraud view, as the stream handler scores them


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Iterator[Champion]:  # noqa: ANN001
    """A registry holding an approved tiny fraud champion, a holder serving it and 12 feature rows."""
    root = tmp_path_factory.mktemp("scoring-contract")
    backends = Backends(Settings(home=root / "home"))
    rng = random.Random(3)
    cards = [token("crd_", rng) for _ in range(4)]
    users = {c: token("usr_", rng) for c in cards}
    events = random_events(rng, cards, users, 300)
    train_fraud_model(root / "fraud", events, seed=1)
    features = load_scoring_model(root / "fraud").features
    registry = backends.model_registry
    registry.register(
        MODEL, root / "fraud", {"alert_threshold": 0.3}, {}, Lineage("sha256:t", features, "t", "r")
    )
    registry.approve(MODEL, 1, "tester", "test champion")
    holder = ModelHolder(MODEL, registry, lambda v: load_version(v, backends.object_store), 0.0)
    holder.start()
    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(None))
    rows = [online.update(e) for e in events][-12:]
    yield Champion(backends, holder, rows)
    holder.stop()


class HttpSageMakerRuntime:
    """The slice of a `sagemaker-runtime` client the adapter uses: `invoke_endpoint` POSTs to a container."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.calls: list[str] = []

    def invoke_endpoint(self, *, EndpointName: str, ContentType: str, Accept: str, Body: bytes) -> dict:  # noqa: N803
        self.calls.append(EndpointName)
        request = urllib.request.Request(
            f"{self.base_url}/invocations",
            data=Body,
            headers={"Content-Type": ContentType, "Accept": Accept},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - 127.0.0.1 only
            return {"Body": io.BytesIO(response.read()), "ContentType": response.headers["Content-Type"]}


@pytest.fixture(scope="module")
def container(champion: Champion) -> Iterator[str]:
    """The inference app (SageMaker routes, no API key: the endpoint authenticates) on 127.0.0.1."""
    app = create_app(
        backends=champion.backends,
        config=ServingConfig(reload_seconds=0.0, invocations_auth=False),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the inference app did not start"
    host, port = sock.getsockname()
    yield f"http://{host}:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def in_process(champion: Champion) -> InProcessEndpoint:
    return InProcessEndpoint(FraudChampionScorer(champion.holder))


def sagemaker(container: str) -> SageMakerEndpoint:
    # Few rows per call, so a batch takes several calls that must agree on the model version.
    return SageMakerEndpoint(HttpSageMakerRuntime(container), MODEL, rows_per_call=5)


@pytest.fixture(params=["inprocess", "sagemaker"])
def endpoint(request, champion: Champion) -> ScoringEndpoint:  # noqa: ANN001
    if request.param == "inprocess":
        return in_process(champion)
    return sagemaker(request.getfixturevalue("container"))


def probabilities(batch: ScoredBatch) -> list[float]:
    return [s.probability for s in batch.scores]


# -- the contract -----------------------------------------------------------------------------------------
def test_adapters_implement_the_port(endpoint: ScoringEndpoint) -> None:
    assert isinstance(endpoint, ScoringEndpoint)


def test_one_score_per_row_in_order(endpoint: ScoringEndpoint, champion: Champion) -> None:
    rows = champion.rows
    forward = probabilities(endpoint.score(rows))
    backward = probabilities(endpoint.score(rows[::-1]))
    assert len(forward) == len(rows)
    assert len(set(forward)) > 1  # distinct scores, so the order check below can fail
    assert backward == pytest.approx(forward[::-1], abs=1e-9)
    assert [probabilities(endpoint.score([r]))[0] for r in rows[:3]] == pytest.approx(forward[:3], abs=1e-6)


def test_probabilities_are_in_the_unit_interval(endpoint: ScoringEndpoint, champion: Champion) -> None:
    assert all(0.0 <= p <= 1.0 for p in probabilities(endpoint.score(champion.rows)))


def test_a_batch_comes_from_one_model_version(endpoint: ScoringEndpoint, champion: Champion) -> None:
    batch = endpoint.score(champion.rows)
    assert (batch.model, batch.model_version) == (MODEL, 1)
    assert 0.0 <= batch.threshold <= 1.0


def test_an_empty_batch_has_no_scores(endpoint: ScoringEndpoint) -> None:
    assert endpoint.score([]).scores == []


def test_both_adapters_give_the_same_probabilities(champion: Champion, container: str) -> None:
    here = probabilities(in_process(champion).score(champion.rows))
    remote = sagemaker(container)
    there = probabilities(remote.score(champion.rows))
    assert there == pytest.approx(here, abs=1e-6)
    assert remote.client.calls == [MODEL] * 3  # 12 rows, 5 per call: over HTTP, to the named endpoint


def test_both_adapters_give_the_same_reason_codes(champion: Champion, container: str) -> None:
    here = in_process(champion).score(champion.rows).scores
    there = sagemaker(container).score(champion.rows).scores
    assert any(s.reasons for s in here)  # the fraud champion explains its scores (features pushing up)
    assert [[f for f, _ in s.reasons] for s in there] == [[f for f, _ in s.reasons] for s in here]
    for near, far in zip(here, there, strict=True):
        assert [c for _, c in far.reasons] == pytest.approx([c for _, c in near.reasons], abs=1e-6)


# -- malformed answers --------------------------------------------------------------------------------------
class CannedRuntime:
    """A `sagemaker-runtime` stand-in answering `body` to every call."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def invoke_endpoint(self, **_: Any) -> dict:
        return {"Body": io.BytesIO(self.body), "ContentType": "application/json"}


class CannedScorer:
    """A champion scorer answering `probabilities` whatever the rows."""

    def __init__(self, probabilities: list[float]) -> None:
        self.probabilities = probabilities

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
        return ScoredBatch(MODEL, 1, 0.5, [Score(p, []) for p in self.probabilities])

    def close(self) -> None:
        """Nothing to stop."""


def answer(predictions: object) -> bytes:
    return json.dumps({"predictions": predictions, "model": MODEL, "model_version": 1}).encode()


def answer_with_reasons(reasons: object) -> bytes:
    doc = {"predictions": [0.2, 0.3], "model": MODEL, "model_version": 1, "reasons": reasons}
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    "made",
    [
        lambda: SageMakerEndpoint(CannedRuntime(answer([0.2])), MODEL),  # one short
        lambda: SageMakerEndpoint(CannedRuntime(answer([0.2, 1.5])), MODEL),  # not a probability
        lambda: SageMakerEndpoint(CannedRuntime(answer([0.2, [0.1, 0.9]])), MODEL),  # not a number
        lambda: SageMakerEndpoint(CannedRuntime(json.dumps({"scores": [0.1, 0.2]}).encode()), MODEL),
        lambda: SageMakerEndpoint(CannedRuntime(b"<html>busy</html>"), MODEL),  # not JSON
        lambda: SageMakerEndpoint(CannedRuntime(answer_with_reasons([[]])), MODEL),  # reasons one short
        lambda: SageMakerEndpoint(CannedRuntime(answer_with_reasons([[{"f": 1}], []])), MODEL),  # malformed
        lambda: InProcessEndpoint(CannedScorer([0.2])),  # one short
        lambda: InProcessEndpoint(CannedScorer([0.2, -0.1])),  # not a probability
    ],
)
def test_a_malformed_answer_raises_endpoint_error(made) -> None:  # noqa: ANN001
    with pytest.raises(EndpointError, match="endpoint"):
        made().score([{"amount_cents": 1}, {"amount_cents": 2}])


def test_a_version_change_within_a_batch_raises_endpoint_error() -> None:
    class Flipping(CannedRuntime):
        version = 0

        def invoke_endpoint(self, **_: Any) -> dict:
            self.version += 1
            body = json.dumps({"predictions": [0.5], "model": MODEL, "model_version": self.version}).encode()
            return {"Body": io.BytesIO(body)}

    with pytest.raises(EndpointError, match="changed model version"):
        SageMakerEndpoint(Flipping(b""), MODEL, rows_per_call=1).score([{"a": 1}, {"a": 2}])


# -- Backends picks the adapter ------------------------------------------------------------------------
def test_backends_pick_the_scoring_endpoint(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    built: list[CannedScorer] = []

    def factory() -> CannedScorer:
        built.append(CannedScorer([0.25]))
        return built[-1]

    local = Backends(Settings(home=tmp_path / "home")).scoring_endpoint(factory)
    assert isinstance(local, InProcessEndpoint) and local.scorer is built[0]
    assert probabilities(local.score([{"a": 1}])) == [0.25]

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(
        home=tmp_path / "home", backend="aws", fraud_endpoint_name="fraud-prod", serve_fraud_threshold=0.4
    )
    remote = Backends(settings).scoring_endpoint(factory)
    assert isinstance(remote, SageMakerEndpoint)
    assert (remote.endpoint_name, remote.threshold) == ("fraud-prod", 0.4)
    assert remote.client.meta.service_model.service_name == "sagemaker-runtime"
    assert len(built) == 1  # the local scorer is not built in AWS mode
