"""The challenger in shadow before the switch, and the approval policy, on a real platform in a temporary
CDP home: an MLflow registry with a tiny fraud champion (v1) and a challenger (v2, passed the gate), the
stream handler scoring both (the challenger only into `transactions_shadow`), the shadow comparison reading
that table, and the switch by policy (automatic for a retrain of the same features within bounds) or by a
named person who is not the version's author.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cdp.backends import Backends
from cdp.registry import APPROVED, PENDING, REJECTED, Lineage
from cdp.registry.scoring import load_scoring_model
from cdp.scoring.inprocess import InProcessEndpoint
from cdp.settings import Settings
from cdp.streaming import records
from inference.holder import ModelHolder
from inference.loaded import load_version
from inference.streaming.champion_scorer import FraudChampionScorer
from inference.streaming.handler import build_handler
from inference.streaming.shadow import ChallengerScorer
from tests.test_inference_app import random_events, token, train_fraud_model
from tests.test_stream_handler import event_of

MODEL = "cdp-fraud"
PIPELINE = "ml-pipeline"
THRESHOLD = 0.3


class Platform:
    """One CDP home: the registry (champion v1, challenger v2 unless told), cards and users."""

    def __init__(self, root, challenger_features_differ: bool = False) -> None:
        self.backends = Backends(Settings(home=root / "home"))
        rng = random.Random(5)
        self.cards = [token("crd_", rng) for _ in range(4)]
        self.users = {c: token("usr_", rng) for c in self.cards}
        events = random_events(rng, self.cards, self.users, 400)
        train_fraud_model(root / "v1", events, seed=1)
        train_fraud_model(root / "v2", events, seed=2)
        registry = self.backends.model_registry
        features = load_scoring_model(root / "v1").features
        lineage = Lineage("sha256:test", features, "test", "run-1")
        metrics = {"alert_threshold": THRESHOLD, "pr_auc": 0.5}
        registry.register(MODEL, root / "v1", metrics, {}, lineage, registered_by=PIPELINE)
        registry.approve(MODEL, 1, "model-approver-1", "first champion")
        registry.register(MODEL, root / "v2", metrics, {}, lineage, registered_by=PIPELINE)
        registry.set_challenger(MODEL, 2, "promotion-gate", "passed the promotion gate")

    def holder(self, alias: str = "champion") -> ModelHolder:
        store = self.backends.object_store
        holder = ModelHolder(
            MODEL, self.backends.model_registry, lambda v: load_version(v, store), 0.0, alias
        )
        holder.start()
        return holder

    def handler(self, shadow: ChallengerScorer | None = None):  # noqa: ANN201
        endpoint = InProcessEndpoint(FraudChampionScorer(self.holder()))
        return build_handler(
            self.backends, endpoint=endpoint, shadow=shadow or ChallengerScorer(self.holder("challenger"))
        )

    def events(self, n: int, start: datetime = datetime(2019, 6, 1), first: int = 0) -> list[dict]:
        out = []
        for i in range(first, first + n):
            card = self.cards[i % len(self.cards)]
            risky = i % 3 == 0
            ts = start + timedelta(minutes=13 * i)
            out.append({
                "txn_id": f"{card[4:]}-{i}", "user_token": self.users[card], "card_token": card, "ts": ts,
                "amount_cents": 90_000 if risky else 1_250, "channel": "online" if risky else "chip",
                "merchant_id": 7 if risky else 3, "merchant_city": None if risky else "Reno",
                "merchant_state": None if risky else "NV", "zip": None if risky else "89501",
                "mcc": 7995 if risky else 5411, "errors": ["Bad CVV"] if risky else None,
                "is_fraud": risky and i % 2 == 0, "event_seq": i + 1, "year": ts.year, "month": ts.month,
            })  # fmt: skip
        return out

    def rows(self, table: str) -> list[dict]:
        return self.backends.catalog.query(f"SELECT * FROM {table} ORDER BY txn_id").to_pylist()


@pytest.fixture
def platform(tmp_path) -> Platform:
    return Platform(tmp_path)


# -- the stream handler scores the challenger in shadow --------------------------------------------------
def test_the_challenger_scores_every_event_in_shadow_and_is_never_acted_on(platform):
    handler = platform.handler()
    events = platform.events(30)
    assert handler(event_of([records.encode(e) for e in events]), None) == {"batchItemFailures": []}

    served = {r["txn_id"]: r for r in platform.rows("transactions_scored")}
    shadow = platform.rows("transactions_shadow")
    assert sorted(r["txn_id"] for r in shadow) == sorted(served) and len(shadow) == len(events)
    for row in shadow:
        champion = served[row["txn_id"]]
        assert (row["champion_model"], row["champion_version"]) == (MODEL, 1)
        assert (row["model"], row["model_version"]) == (MODEL, 2)
        assert row["champion_probability"] == champion["fraud_probability"]
        assert row["champion_alert"] == champion["is_alert"]
        assert row["feature_hash"] == champion["feature_hash"]  # both models scored the same features
        assert row["would_alert"] == (row["fraud_probability"] >= row["threshold"])
        assert set(row).isdisjoint({"user_token", "amount_cents", "merchant_id"})
    assert [r["fraud_probability"] for r in shadow] != [r["champion_probability"] for r in shadow]
    # alerts are the champion's only: the challenger's would-be alerts raise nothing
    alerts = {r["txn_id"] for r in platform.rows("fraud_alerts")}
    assert alerts == {t for t, r in served.items() if r["is_alert"]}
    assert handler.report.shadow_scored == len(events) and handler.report.shadow_failed == 0
    handler.close()


def test_a_failing_challenger_never_stops_or_changes_the_batch(platform):
    class Broken:
        def score(self, rows):  # noqa: ANN001, ANN202
            raise RuntimeError("the challenger could not be loaded")

        def close(self) -> None:
            pass

    handler = platform.handler(shadow=Broken())  # type: ignore[arg-type]
    events = platform.events(12)
    assert handler(event_of([records.encode(e) for e in events]), None) == {"batchItemFailures": []}
    assert len(platform.rows("transactions_scored")) == len(events)
    assert handler.report.shadow_failed == len(events) and handler.report.shadow_scored == 0


def test_scored_events_record_model_view_version_and_feature_hash(platform):
    import hashlib

    handler = platform.handler()
    handler(event_of([records.encode(e) for e in platform.events(6)]), None)
    for row in platform.rows("transactions_scored"):
        assert (
            row["feature_view"].startswith("fraud_card@")
            and len(row["feature_view"]) == len("fraud_card@") + 12
        )
        assert row["feature_hash"] == "sha256:" + hashlib.sha256(row["features"].encode()).hexdigest()
        assert (row["model"], row["model_version"]) == (MODEL, 1)
    handler.close()
