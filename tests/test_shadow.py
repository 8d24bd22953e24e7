"""The challenger in shadow before the switch, and the approval policy, on a real platform in a temporary
CDP home: an MLflow registry with a tiny fraud champion (v1) and a challenger (v2, passed the gate), the
stream handler scoring both (the challenger only into `transactions_shadow`), the shadow comparison reading
that table, and the switch by policy (automatic for a retrain of the same features within bounds) or by a
named person who is not the version's author.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cdp.backends import Backends
from cdp.lake.writer import LakeWriter
from cdp.registry import APPROVED, REJECTED, Lineage
from cdp.registry.approval import AUTO_APPROVER, ApprovalRefused, approve_switch
from cdp.registry.commands import show_model
from cdp.registry.scoring import load_scoring_model
from cdp.scoring.inprocess import InProcessEndpoint
from cdp.scoring.port import Score, ScoredBatch
from cdp.security.errors import AccessDenied
from cdp.settings import Settings
from cdp.streaming import records
from inference.holder import ModelHolder
from inference.loaded import load_version
from inference.streaming import scored
from inference.streaming.champion_scorer import FraudChampionScorer
from inference.streaming.handler import build_handler
from inference.streaming.shadow import TRANSACTIONS_SHADOW, ChallengerScorer, shadow_table
from monitoring.promotion import switch
from monitoring.promotion.shadow import ShadowPolicy, compare_shadow
from monitoring.promotion.switch import (
    AWAITING_APPROVAL,
    NO_CHALLENGER,
    SHADOW_CONTINUES,
    SWITCHED,
    decide_switch,
    manual_reasons,
)
from tests.test_inference_app import random_events, token, train_fraud_model
from tests.test_stream_handler import event_of

MODEL = "cdp-fraud"
PIPELINE = "ml-pipeline"
THRESHOLD = 0.3


class Platform:
    """One CDP home: the registry (champion v1, challenger v2 unless told), cards and users."""

    def __init__(self, root, models) -> None:  # noqa: ANN001 - the trained model folders
        self.backends = Backends(Settings(home=root / "home"))
        self.cards, self.users = models["cards"], models["users"]
        registry = self.backends.model_registry
        features = load_scoring_model(models["v1"]).features
        lineage = Lineage("sha256:test", features, "test", "run-1")
        metrics = {"alert_threshold": THRESHOLD, "pr_auc": 0.5}
        registry.register(MODEL, models["v1"], metrics, {}, lineage, registered_by=PIPELINE)
        registry.approve(MODEL, 1, "model-approver-1", "first champion")
        registry.register(MODEL, models["v2"], metrics, {}, lineage, registered_by=PIPELINE)
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


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """Two tiny fraud boosters on the same events (different seeds), the cards and users they know."""
    root = tmp_path_factory.mktemp("shadow-models")
    rng = random.Random(5)
    cards = [token("crd_", rng) for _ in range(4)]
    users = {c: token("usr_", rng) for c in cards}
    events = random_events(rng, cards, users, 400)
    train_fraud_model(root / "v1", events, seed=1)
    train_fraud_model(root / "v2", events, seed=2)
    return {"v1": root / "v1", "v2": root / "v2", "cards": cards, "users": users}


@pytest.fixture
def platform(tmp_path, models) -> Platform:
    return Platform(tmp_path, models)


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


# -- the shadow comparison and the approval policy (shadow rows landed as the handler writes them) -------
# Loose bounds except where a test is about one of them; no waiting period.
LOOSE = ShadowPolicy(min_events=20, min_hours=0.0, max_alert_rate_change=10.0, min_agreement=0.0,
                     max_pr_auc_drop=0.02, min_labelled_frauds=3)  # fmt: skip


def land(platform: Platform, champion: list[float], challenger: list[float], frauds: list[bool]) -> None:
    """Scored events (champion v1's probabilities, their labels) and their shadow rows (challenger v2)."""
    backends = platform.backends
    events = platform.events(len(champion))
    for event, label in zip(events, frauds, strict=True):
        event["is_fraud"] = label
    at = datetime.now(UTC).replace(tzinfo=None)
    table = scored.scored_table(
        events, [{"amount_cents": e["amount_cents"]} for e in events], champion, [[]] * len(events),
        THRESHOLD, MODEL, 1, at,
    )  # fmt: skip
    shadow = ScoredBatch(MODEL, 2, THRESHOLD, [Score(p, []) for p in challenger])
    writer, bucket = (
        LakeWriter(backends.object_store, backends.settings.lake_bucket),
        backends.settings.lake_bucket,
    )
    for lake_table, rows in (
        (scored.TRANSACTIONS_SCORED, table),
        (TRANSACTIONS_SHADOW, shadow_table(table, shadow, at)),
    ):
        backends.catalog.register_table(lake_table.info(bucket))
        writer.write_chunk(lake_table, rows, "scored-test")


def audit(platform: Platform, action: str) -> list:
    return [r for r in platform.backends.audit.records() if r.action == action]


def test_the_comparison_waits_for_the_volume_and_the_period(platform):
    land(platform, [0.1] * 30, [0.1] * 30, [False] * 30)
    registry = platform.backends.model_registry
    for policy, waiting in (
        (replace(LOOSE, min_events=31), "30 shadow events of the 31 needed"),
        (replace(LOOSE, min_hours=1.0), "h in shadow of the 1 h needed"),
    ):
        decision = decide_switch(platform.backends, MODEL, actor="promotion-gate", policy=policy)
        assert decision.outcome == SHADOW_CONTINUES and waiting in decision.reasons[0]
    assert registry.challenger_version(MODEL) == 2 and registry.champion_version(MODEL) == 1
    assert registry.evidence(MODEL, 2) == {} and not audit(platform, "model-shadow-comparison")


def test_a_retrain_within_bounds_switches_by_policy_and_records_who_and_why(platform):
    champion = [0.9 if i % 5 == 0 else 0.05 for i in range(40)]
    frauds = [i % 5 == 0 and i % 10 == 0 for i in range(40)]
    land(platform, champion, [p * 0.98 for p in champion], frauds)

    decision = decide_switch(platform.backends, MODEL, actor="promotion-gate", policy=LOOSE)

    assert (decision.outcome, decision.route, decision.approver) == (SWITCHED, "auto", AUTO_APPROVER)
    comparison = decision.comparison
    assert (comparison.events, comparison.agreement, comparison.alert_rate_change) == (40, 1.0, 0.0)
    assert comparison.labelled_frauds == 4 and not comparison.metric_drop
    registry = platform.backends.model_registry
    switched = registry.get(MODEL, 2)
    assert (switched.status, switched.is_champion, switched.is_challenger) == (APPROVED, True, False)
    evidence = registry.evidence(MODEL, 2)
    assert evidence["shadow"]["passed"] and evidence["shadow"]["approval_route"] == "auto"
    approval = evidence["approval"]
    assert (approval["approver"], approval["route"], approval["executed_by"]) == (
        AUTO_APPROVER,
        "auto",
        "promotion-gate",
    )
    assert approval["author"] == PIPELINE and approval["at"]
    assert show_model(registry, MODEL)["evidence"]["approval"]["approver"] == AUTO_APPROVER  # cdp models show
    (approve,) = [r for r in audit(platform, "model-approve") if r.details["version"] == 2]
    assert approve.actor == AUTO_APPROVER and approve.outcome == "allowed"
    (recorded,) = audit(platform, "model-switch-approval")
    assert recorded.actor == AUTO_APPROVER and recorded.details["executed_by"] == "promotion-gate"
    (compared,) = audit(platform, "model-shadow-comparison")
    assert compared.details["passed"] is True and compared.details["events"] == 40
    assert (
        decide_switch(platform.backends, MODEL, actor="promotion-gate", policy=LOOSE).outcome == NO_CHALLENGER
    )


@pytest.mark.parametrize(
    ("policy", "challenger", "failed"),
    [
        (replace(LOOSE, max_alert_rate_change=0.5), [0.9] * 40, "alert-rate change +3900.0%"),
        (
            replace(LOOSE, min_agreement=0.99),
            [0.9 if i < 2 else 0.05 for i in range(40)],
            "agreement 97.50% below",
        ),
    ],
)
def test_a_comparison_out_of_bounds_rejects_the_challenger_and_the_champion_serves_on(
    platform, policy, challenger, failed
):
    land(platform, [0.9] + [0.05] * 39, challenger, [False] * 40)

    decision = decide_switch(platform.backends, MODEL, actor="promotion-gate", policy=policy)

    assert decision.outcome == switch.REJECTED and any(failed in r for r in decision.reasons), (
        decision.reasons
    )
    registry = platform.backends.model_registry
    assert registry.get(MODEL, 2).status == REJECTED and registry.challenger_version(MODEL) is None
    assert registry.champion_version(MODEL) == 1
    assert "shadow comparison failed" in registry.get(MODEL, 2).status_reason


def test_a_metric_drop_needs_a_named_person_who_is_not_the_author(platform):
    champion = [0.9 if i % 4 == 0 else 0.05 for i in range(40)]
    frauds = [i % 4 == 0 for i in range(40)]
    challenger = [0.05 if i % 4 == 0 else (0.06 if i % 4 == 1 else 0.04) for i in range(40)]
    land(platform, champion, challenger, frauds)
    backends, registry = platform.backends, platform.backends.model_registry
    policy = replace(LOOSE, max_alert_rate_change=1.0)

    decision = decide_switch(backends, MODEL, actor="promotion-gate", policy=policy)

    assert decision.outcome == AWAITING_APPROVAL and decision.route == "manual"
    assert decision.comparison.metric_drop and decision.reasons[0].startswith("metric drop: labelled PR-AUC")
    assert registry.champion_version(MODEL) == 1 and registry.challenger_version(MODEL) == 2
    assert registry.evidence(MODEL, 2)["shadow"]["manual_because"] == decision.reasons

    def approve(caller: str, named: str | None = None):  # noqa: ANN202
        return approve_switch(registry, backends.audit, MODEL, 2, caller_name=caller, role="model-approver",
                              named=named or caller, reason="reviewed the shadow evidence")  # fmt: skip

    with pytest.raises(ApprovalRefused, match="is not the caller"):
        approve("model-approver-1", named="someone-else")
    with pytest.raises(AccessDenied, match="separation of duties"):
        approve(PIPELINE)  # the author of v2
    assert registry.champion_version(MODEL) == 1
    approved = approve("model-approver-1")
    assert (approved.is_champion, approved.is_challenger) == (True, False)
    approval = registry.evidence(MODEL, 2)["approval"]
    assert (approval["approver"], approval["route"], approval["author"]) == (
        "model-approver-1",
        "manual",
        PIPELINE,
    )
    assert approval["because"] == decision.reasons
    denied = [r for r in audit(platform, "model-switch-approval") if r.outcome == "denied"]
    assert len(denied) == 1 and "someone-else" in denied[0].details["refusal"]


def test_only_a_challenger_with_a_passed_comparison_may_be_approved_while_a_champion_serves(platform):
    backends, registry = platform.backends, platform.backends.model_registry

    def approve(version: int):  # noqa: ANN202
        return approve_switch(registry, backends.audit, MODEL, version, caller_name="model-approver-1",
                              role="model-approver", named="model-approver-1", reason="fine")  # fmt: skip

    with pytest.raises(ApprovalRefused, match="no passed shadow comparison yet"):
        approve(2)
    with pytest.raises(ApprovalRefused, match="already the champion"):
        approve(1)
    registry.reject(MODEL, 2, "promotion-gate", "withdrawn")
    with pytest.raises(ApprovalRefused, match="is not the challenger"):
        approve(2)
    assert registry.champion_version(MODEL) == 1


def test_a_new_feature_set_or_no_champion_needs_a_person(platform):
    registry = platform.backends.model_registry
    champion, challenger = registry.get(MODEL, 1), registry.get(MODEL, 2)
    comparison = compare_shadow(platform.backends, challenger, champion, replace(LOOSE, min_events=0))
    assert manual_reasons(challenger, champion, comparison) == []
    wider = replace(
        challenger,
        lineage=replace(challenger.lineage, features=(*challenger.lineage.features, "velocity_7d")),
    )
    (reason,) = manual_reasons(wider, champion, comparison)
    assert reason.startswith("new feature set (added velocity_7d; removed none)")
    assert manual_reasons(challenger, None, comparison) == [
        "no champion yet: a first champion is approved by a person"
    ]


def test_cdp_models_approve_names_the_approver_and_refuses_in_one_line(platform, monkeypatch):
    from typer.testing import CliRunner

    from app.main import app
    from cdp.settings import get_settings
    from tests.identity_support import issue

    land(
        platform,
        [0.9 if i % 4 == 0 else 0.05 for i in range(40)],
        [0.06] * 40,
        [i % 4 == 0 for i in range(40)],
    )
    backends = platform.backends
    policy = replace(LOOSE, max_alert_rate_change=1.0)
    assert decide_switch(backends, MODEL, actor="promotion-gate", policy=policy).outcome == AWAITING_APPROVAL
    monkeypatch.setenv("CDP_HOME", str(backends.settings.home))
    author = issue(backends, PIPELINE, "model-approver")  # the identity that registered v2
    approver = issue(backends, "model-approver-1", "model-approver")

    def cdp(identity, *args: str):  # noqa: ANN001, ANN202
        get_settings.cache_clear()
        return CliRunner().invoke(
            app, ["models", "approve", MODEL, "2", *args], env={"CDP_IDENTITY_FILE": str(identity)}
        )

    for identity, args, refusal in (
        (approver, ("--as", "model-approver-2"), "is not the caller"),
        (author, ("--as", PIPELINE), "separation of duties"),
    ):
        result = cdp(identity, *args)
        assert result.exit_code == 3 and refusal in result.stderr, result.output
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert backends.model_registry.champion_version(MODEL) == 1
    result = cdp(approver, "--as", "model-approver-1", "--reason", "metric drop reviewed: recall holds")
    assert result.exit_code == 0 and "approved by model-approver-1" in result.output, result.output
    get_settings.cache_clear()
    assert backends.model_registry.champion_version(MODEL) == 2
    approval = backends.model_registry.evidence(MODEL, 2)["approval"]
    assert (approval["approver"], approval["reason"]) == (
        "model-approver-1",
        "metric drop reviewed: recall holds",
    )


def test_the_demo_shows_the_shadow_comparison_and_the_switch(platform, monkeypatch):
    """The demo's step after the shadow period: a comparison the policy leaves to a person is approved by
    model-approver-1, named; the timeline reads shadow comparison, then the approval."""
    from app.demo import _demo_shadow_switch
    from cdp.settings import get_settings
    from monitoring.actions import Timeline
    from tests.identity_support import issue, issue_services

    land(
        platform,
        [0.9 if i % 4 == 0 else 0.05 for i in range(60)],
        [0.06] * 60,
        [i % 4 == 0 for i in range(60)],
    )
    backends = platform.backends
    monkeypatch.setenv("CDP_HOME", str(backends.settings.home))
    monkeypatch.setenv("CDP_SHADOW_MAX_ALERT_RATE_CHANGE", "1.0")
    monkeypatch.setenv("CDP_SHADOW_MIN_AGREEMENT", "0")
    monkeypatch.setenv("CDP_DEMO_SHADOW_MIN_EVENTS", "50")
    get_settings.cache_clear()
    issue_services(backends)
    issue(backends, "model-approver-1", "model-approver")
    timeline = Timeline()

    _demo_shadow_switch(timeline)

    get_settings.cache_clear()
    said = [e.what for e in timeline.entries]
    assert said[0].startswith("shadow comparison: cdp-fraud v2: awaiting-approval (metric drop"), said
    assert said[-1] == "cdp-fraud v2 approved by model-approver-1"
    assert backends.model_registry.champion_version(MODEL) == 2
    assert backends.model_registry.evidence(MODEL, 2)["approval"]["approver"] == "model-approver-1"
