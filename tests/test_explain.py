"""`cdp explain TXN_ID`: a past fraud decision reproduced from the lake, on a real platform in a temporary
CDP home: the stream handler scores events with a tiny fraud champion (recording the model version, the
feature view's version and the hash of each event's features), the same events are in the lake's
`transactions`; the explanation recomputes the features point in time from the lake with the online
feature code, scores them with the same version and says whether they match what was served.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pyarrow as pa
import pytest
import typer

from cdp.backends import Backends
from cdp.lake.tables import TRANSACTIONS, TRANSACTIONS_LAKE_SCHEMA
from cdp.lake.writer import LakeWriter
from cdp.registry import Lineage
from cdp.registry.scoring import load_scoring_model
from cdp.settings import Settings, get_settings
from cdp.streaming import records
from inference.cli import explain
from inference.explain import ExplainError, explain_transaction
from inference.streaming.handler import build_handler
from tests.identity_support import issue
from tests.test_inference_app import random_events, token, train_fraud_model
from tests.test_stream_handler import event_of

MODEL = "cdp-fraud"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain-model")
    rng = random.Random(5)
    cards = [token("crd_", rng) for _ in range(3)]
    users = {c: token("usr_", rng) for c in cards}
    train_fraud_model(root / "fraud", random_events(rng, cards, users, 400), seed=1)
    return root / "fraud"


@pytest.fixture
def platform(tmp_path, model_folder):
    """A champion (v1), events of two cards landed in the lake and scored by the stream handler."""
    backends = Backends(Settings(home=tmp_path / "home"))
    features = load_scoring_model(model_folder).features
    registry = backends.model_registry
    registry.register(
        MODEL, model_folder, {"alert_threshold": 0.3}, {}, Lineage("sha256:t", features, "t", "r")
    )
    registry.approve(MODEL, 1, "model-approver-1", "first champion")
    rng = random.Random(9)
    cards = [token("crd_", rng) for _ in range(2)]
    events = [event(cards[i % 2], i, rng.choice(["usr_a", "usr_b"])) for i in range(24)]
    land(backends, events, "stream-1")
    handler = build_handler(backends)
    handler(event_of([records.encode(e) for e in events]), None)
    handler.close()
    return backends, events


def event(card: str, i: int, user: str, ts: datetime | None = None) -> dict:
    risky = i % 4 == 0
    ts = ts or datetime(2019, 6, 1, 8) + timedelta(minutes=37 * i)
    return {
        "txn_id": f"{card[4:]}-{1000 + i}", "user_token": "usr_" + user[4:].upper() + "X" * 22,
        "card_token": card, "ts": ts, "amount_cents": 70_000 if risky else 1_900 + 10 * i,
        "channel": "online" if risky else "swipe", "merchant_id": 11 if risky else 3 + i % 3,
        "merchant_city": None if risky else "Reno", "merchant_state": None if risky else "NV",
        "zip": None if risky else "89501", "mcc": 7995 if risky else 5411,
        "errors": ["Bad CVV"] if risky else None, "is_fraud": False, "event_seq": 1000 + i,
        "year": ts.year, "month": ts.month,
    }  # fmt: skip


def land(backends: Backends, events: list[dict], chunk: str) -> None:
    """The events in the lake's `transactions`, as the stream's consumer lands them."""
    bucket = backends.settings.lake_bucket
    backends.catalog.register_table(TRANSACTIONS.info(bucket))
    table = pa.Table.from_pylist(events, schema=TRANSACTIONS_LAKE_SCHEMA)
    LakeWriter(backends.object_store, bucket).write_chunk(TRANSACTIONS, table, chunk)


def target_threshold(backends, txn_id: str) -> float:  # noqa: ANN001
    rows = backends.catalog.query(f"SELECT threshold FROM transactions_scored WHERE txn_id = '{txn_id}'")
    return float(rows.to_pylist()[0]["threshold"])


def test_a_decision_is_reproduced_from_the_lake_with_its_reason_codes(platform):
    backends, events = platform
    target = events[-1]  # the card's latest: every earlier event of its card feeds its features

    explanation = explain_transaction(backends, target["txn_id"])

    assert explanation.reproduced, explanation.lines()
    assert explanation.features_match and explanation.served_hash.startswith("sha256:")
    assert explanation.prior_events == sum(1 for e in events[:-1] if e["card_token"] == target["card_token"])
    assert (explanation.model, explanation.model_version) == (MODEL, 1)
    assert explanation.feature_view == explanation.current_feature_view
    # the stream explains its alerts only: reason codes exactly when the score reached the threshold
    alerted = explanation.served_probability >= target_threshold(backends, target["txn_id"])
    assert bool(explanation.served_reasons) == alerted
    assert [f for f, _ in explanation.served_reasons] == [f for f, _ in explanation.recomputed_reasons]
    assert explanation.recomputed_probability == pytest.approx(explanation.served_probability, abs=1e-6)
    lines = explanation.lines()
    assert lines[-1].startswith("decision reproduced") and any("hash equal" in line for line in lines)
    assert all(target["user_token"] not in line for line in lines)  # tokens of the card only


def test_an_event_the_stream_never_saw_is_named_as_the_difference(platform):
    backends, events = platform
    target = events[-1]
    # an event of the same card, dated just before the decision, that reached the lake only afterwards
    late = event(target["card_token"], 99, "usr_a", ts=target["ts"] - timedelta(minutes=5))
    land(backends, [late], "late-arrival")

    explanation = explain_transaction(backends, target["txn_id"])

    assert not explanation.features_match and not explanation.reproduced
    assert "txn_count_1h" in explanation.differing_features, explanation.differing_features
    counts = explanation.differing_features["txn_count_1h"]
    assert counts["recomputed"] == counts["served"] + 1
    lines = explanation.lines()
    assert any(line.startswith("features: hash differs") for line in lines)
    assert any(line.strip().startswith("txn_count_1h: served") for line in lines)
    assert lines[-1].startswith("decision NOT reproduced: features differ")


def test_unknown_or_malformed_ids_are_one_line_errors(platform):
    backends, _ = platform
    with pytest.raises(ExplainError, match="no scored event nope-1 in the lake"):
        explain_transaction(backends, "nope-1")
    with pytest.raises(ExplainError, match="a transaction id is"):
        explain_transaction(backends, "x' OR '1'='1")


def test_the_command_needs_a_role_and_audits_whose_decision_was_explained(platform, monkeypatch, capsys):
    backends, events = platform
    target = events[-1]
    monkeypatch.setenv("CDP_HOME", str(backends.settings.home))
    analyst = issue(backends, "fraud-analyst-1", "fraud-ops")
    marketer = issue(backends, "marketer-1", "marketing")
    for identity, expected in ((marketer, 3), (analyst, None)):
        monkeypatch.setenv("CDP_IDENTITY_FILE", str(identity))
        get_settings.cache_clear()
        try:
            assert explain(target["txn_id"]) is True
            code = None
        except typer.Exit as stop:
            code = stop.exit_code
        assert code == expected
    out = capsys.readouterr().out
    assert "decision reproduced" in out and target["txn_id"] in out
    (record,) = [r for r in backends.audit.records() if r.action == "explain" and r.outcome == "allowed"]
    assert (record.actor, record.customer_token) == ("fraud-analyst-1", target["user_token"])
    assert record.details["reproduced"] is True and record.details["version"] == 1
    with pytest.raises(typer.Exit) as missing:
        explain("nope-1")
    assert missing.value.exit_code == 2
    get_settings.cache_clear()
