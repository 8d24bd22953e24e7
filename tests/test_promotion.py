"""The promotion gate on a small generated platform: real fraud boosters (trained by the training scripts'
own functions on a time-split training set), a real MLflow registry with its audit log, and the fraud
view's rows newer than the training set as the holdout. Plus CLV and segmentation on small lake tables,
and the metric rules on tiny arrays."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from cdp.backends import Backends
from cdp.lake.tables import LakeTable
from cdp.lake.writer import LakeWriter
from cdp.registry import APPROVED, PENDING, REJECTED, Lineage
from cdp.registry.scoring import load_scoring_model
from cdp.settings import Settings
from monitoring.promotion import PromotionPolicy, promote
from monitoring.promotion.__main__ import main as promotion_main
from monitoring.promotion.scoring import expected_calibration_error, recall_at_budget
from tests.identity_support import issue

USERS, SEED, START = 15, 11, date(2016, 1, 1)
TRAINING_END = date(2018, 7, 1)  # the training set stops here: later labelled months are the holdout
EMAIL = "jane.doe@example.com"
# Latency is measured on a shared machine: the test policy is lenient, except where the gate is the point.
POLICY = PromotionPolicy(
    latency_rows=10, max_latency_p99_ms=60_000.0, min_holdout_rows=200, min_holdout_positives=10
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """A lake (the batch history) of a few users, the fraud features materialised, a training set ending at
    TRAINING_END, and three model folders: a good booster, one trained on shuffled labels, and the good
    one with an e-mail address planted in a file."""
    from cdp.batch.job import run_batch
    from cdp.synth.generator import generate
    from features.materialize import materialize_view
    from features.training import build_training_set
    from training.fraud import preprocess, train

    root = tmp_path_factory.mktemp("promotion")
    generate(root / "ibm", users=USERS, seed=SEED, start=START, workers=1)
    backends = Backends(Settings(home=root / "home"))
    run_batch(root / "ibm", backends)
    materialize_view(backends, "fraud_card")
    manifest = build_training_set(backends, "fraud_card", end=TRAINING_END)
    frame = backends.catalog.query("SELECT * FROM fraud_training_set").to_pandas()
    parts, spec = preprocess.split_frames(frame)
    args = train.parse_hyperparameters(["--num_round", "40", "--nthread", "1"])

    def fit(folder: Path, shuffled: bool = False) -> Path:
        chosen = {name: part.copy() for name, part in parts.items()}
        if shuffled:
            rng = np.random.default_rng(1)
            for name in ("train", "validation"):
                chosen[name][train.LABEL] = rng.permutation(chosen[name][train.LABEL].to_numpy())
        booster, summary = train.train_booster(chosen["train"], chosen["validation"], spec["features"], args)
        train.save_model(folder, booster, spec, summary, args)
        return folder

    good, shuffled = fit(root / "good"), fit(root / "shuffled", shuffled=True)
    leaky = fit(root / "leaky")
    (leaky / "notes.txt").write_text(f"reviewed with {EMAIL}\n")
    lineage = Lineage(manifest["data_snapshot_sha256"], tuple(spec["features"]), "test", "run-1")
    return {"backends": backends, "good": good, "shuffled": shuffled, "leaky": leaky, "lineage": lineage,
            "manifest": manifest}  # fmt: skip


def manifest_split_end(platform, split: str) -> str:
    """The last event time of one split of the platform's training set, as the manifest records it."""
    return str(platform["manifest"]["splits"][split]["last_ts"]).replace(" ", "T")


def register(platform, name: str, folder: str, approve: bool = False) -> int:
    registry = platform["backends"].model_registry
    version = registry.register(name, platform[folder], {"pr_auc": 0.5}, {}, platform["lineage"]).version
    if approve:
        registry.approve(name, version, "tester", "initial champion")
    return version


def audit_of(backends: Backends, name: str) -> list:
    return [r for r in backends.audit.records() if r.details.get("model") == name]


def test_a_candidate_that_beats_the_champion_becomes_the_challenger_not_the_champion(platform):
    backends = platform["backends"]
    register(platform, "fraud-better", "shuffled", approve=True)
    register(platform, "fraud-better", "good")

    decision = promote(backends, "fraud-better", policy=POLICY)

    assert decision.outcome == "challenger" and decision.passed, decision.reasons
    assert (decision.candidate_version, decision.champion_version) == (2, 1)
    pr_auc = decision.metrics["pr_auc"]
    assert pr_auc["candidate"] > pr_auc["champion"] + POLICY.fraud_pr_auc_margin
    assert all(gate.passed for gate in decision.gates.values())
    assert set(decision.gates) >= {"beats_champion_pr_auc", "min_pr_auc", "max_brier", "max_ece",
                                   "max_latency_p99_ms", "pii_scan"}  # fmt: skip
    # calibration limits: the policy's, or the champion's own on the same rows when that is worse
    for gate, metric, limit in (
        ("max_ece", "ece", POLICY.max_fraud_ece),
        ("max_brier", "brier", POLICY.max_fraud_brier),
    ):
        assert decision.gates[gate].limit == max(limit, decision.metrics[metric]["champion"])
    # the holdout is labelled data after the training set, read from the fraud features
    holdout = decision.holdout
    assert holdout["rows"] >= POLICY.min_holdout_rows and holdout["positives"] >= 10
    # the window ends with the fitted splits (train, validation); the test split and later months are holdout
    fitted_end = manifest_split_end(platform, "validation")
    assert holdout["training_windows"]["v1"] == fitted_end and fitted_end < str(TRAINING_END)
    assert holdout["first_ts"] > fitted_end
    # the gate never switches serving: the candidate runs in shadow first (the champion serves on)
    registry = backends.model_registry
    assert registry.champion("fraud-better").version == 1
    challenger = registry.get("fraud-better", 2)
    assert (challenger.status, challenger.is_challenger) == (PENDING, True)
    assert registry.challenger_version("fraud-better") == 2
    gate = registry.evidence("fraud-better", 2)["challenger"]
    assert f"pr_auc: candidate {pr_auc['candidate']:.4g}" in gate["gate"]
    assert (gate["by"], gate["champion_version"]) == ("promotion-gate", 1) and gate["at"]
    (record,) = [r for r in audit_of(backends, "fraud-better") if r.actor == "promotion-gate"]
    assert (record.action, record.outcome, record.details["version"]) == ("model-challenger", "allowed", 2)
    assert json.loads(json.dumps(decision.to_dict()))["outcome"] == "challenger"
    # fairness by gender and age band is judged beside calibration, and the judgement is in the model card
    assert {"fairness_fraud_alert_rate", "fairness_fraud_false_positive_rate", "no_protected_inputs"} <= set(
        decision.gates
    )
    card = registry.load_card("fraud-better", 2)
    (judged,) = [v for v in card["validations"] if v["by"] == "promotion-gate"]
    assert judged["outcome"] == "challenger" and set(judged["fairness"]["fraud_alert_rate"]["groups"]) == {
        "gender", "age_band",
    }  # fmt: skip
    assert not card.get("approver")  # a challenger: nobody approved the switch yet


def test_rejects_a_worse_candidate_and_keeps_the_champion(platform):
    backends = platform["backends"]
    register(platform, "fraud-worse", "good", approve=True)
    register(platform, "fraud-worse", "shuffled")

    decision = promote(backends, "fraud-worse", policy=POLICY)

    assert decision.outcome == "rejected"
    assert not decision.gates["beats_champion_pr_auc"].passed
    candidate, champion = decision.metrics["pr_auc"]["candidate"], decision.metrics["pr_auc"]["champion"]
    assert candidate < champion
    assert decision.reasons[0] == f"pr_auc: candidate {candidate:.4g}, champion {champion:.4g}"
    assert any(r.startswith("beats_champion_pr_auc failed: ") for r in decision.reasons)
    registry = backends.model_registry
    assert registry.champion("fraud-worse").version == 1
    assert registry.get("fraud-worse", 1).status == APPROVED
    rejected = registry.get("fraud-worse", 2)
    assert rejected.status == REJECTED and "beats_champion_pr_auc failed" in rejected.status_reason
    (record,) = [r for r in audit_of(backends, "fraud-worse") if r.actor == "promotion-gate"]
    assert (record.action, record.outcome) == ("model-reject", "allowed")


def test_calibration_limit_is_the_policys_unless_the_champion_is_worse_calibrated():
    from monitoring.promotion.gates import _calibration_limit

    assert _calibration_limit(0.05, None, "ece") == 0.05
    assert _calibration_limit(0.05, {"ece": 0.02}, "ece") == 0.05
    assert _calibration_limit(0.05, {"ece": 0.12}, "ece") == 0.12  # a new regime: no worse than serving now
    assert _calibration_limit(0.05, {"brier": None}, "brier") == 0.05


@pytest.mark.parametrize(
    ("change", "gate"),
    [
        ({"max_latency_p99_ms": 0.0}, "max_latency_p99_ms"),
        ({"max_fraud_ece": 1e-9}, "max_ece"),
        ({"max_fraud_brier": 1e-9}, "max_brier"),
        ({"min_fraud_pr_auc": 0.9999}, "min_pr_auc"),
    ],
)
def test_each_gate_fails_on_its_own_with_its_reason(platform, change, gate):
    name = "fraud-gate-" + gate.replace("_", "-")
    register(platform, name, "good")
    decision = promote(platform["backends"], name, policy=replace(POLICY, **change))

    assert decision.outcome == "rejected"
    assert [n for n, g in decision.gates.items() if not g.passed] == [gate]
    failed = decision.gates[gate]
    assert (
        f"{gate} failed: {failed.value:.4g} (required {failed.comparison} {failed.limit:.4g})"
        in decision.reasons
    )
    assert platform["backends"].model_registry.champion(name) is None


def test_a_fraud_candidate_that_alerts_one_gender_more_is_rejected(platform, monkeypatch):
    """The good booster with its scores inflated for women (a deliberately biased candidate): its alerts and
    false positives fall on one gender, and the fairness gate rejects it."""
    from monitoring.promotion import gates

    backends = platform["backends"]
    women = set(
        backends.catalog.query("SELECT user_token FROM customers WHERE gender = 'Female'").to_pandas()[
            "user_token"
        ]
    )
    honest = gates.scoring.fraud_probabilities

    def inflated_for_women(model, frame):
        scores = honest(model, frame)
        return np.where(
            frame["user_token"].isin(women).to_numpy(), np.minimum(scores * 50 + 0.5, 1.0), scores
        )

    monkeypatch.setattr(gates.scoring, "fraud_probabilities", inflated_for_women)
    register(platform, "fraud-biased", "good")
    policy = replace(POLICY, alert_budget=0.05, fairness_min_group_customers=3)  # a platform of 15 customers
    decision = promote(backends, "fraud-biased", policy=policy)

    assert decision.outcome == "rejected"
    failed = {n for n, g in decision.gates.items() if not g.passed}
    assert {"fairness_fraud_alert_rate", "fairness_fraud_false_positive_rate"} <= failed
    card = backends.model_registry.load_card("fraud-biased", 1)
    (judged,) = [v for v in card["validations"] if v["by"] == "promotion-gate"]
    by_gender = judged["fairness"]["fraud_false_positive_rate"]["groups"]["gender"]
    assert (
        by_gender["Female"]["ratio"] > POLICY.fairness_max_ratio
        and by_gender["Female"]["status"] == "outside"
    )
    assert backends.model_registry.get("fraud-biased", 1).status == REJECTED


def test_pii_in_an_artifact_fails_the_scan_without_echoing_the_value(platform):
    backends = platform["backends"]
    register(platform, "fraud-leaky", "leaky")
    decision = promote(backends, "fraud-leaky", policy=POLICY)

    assert decision.outcome == "rejected"
    assert [n for n, g in decision.gates.items() if not g.passed] == ["pii_scan"]
    assert any(r.startswith("pii_scan: email in ") and "notes.txt" in r for r in decision.reasons)
    text = json.dumps(decision.to_dict()) + backends.model_registry.get("fraud-leaky", 1).status_reason
    assert EMAIL not in text
    assert backends.model_registry.get("fraud-leaky", 1).status == REJECTED


def test_without_a_champion_the_gates_alone_decide(platform):
    register(platform, "fraud-first", "good")
    decision = promote(platform["backends"], "fraud-first", policy=POLICY)

    assert decision.outcome == "challenger" and decision.champion_version is None
    assert decision.reasons[0] == "no champion yet: the gates alone decide"
    assert "beats_champion_pr_auc" not in decision.gates
    assert decision.metrics["pr_auc"]["champion"] is None
    registry = platform["backends"].model_registry
    assert registry.champion("fraud-first") is None and registry.challenger_version("fraud-first") == 1


def test_dry_run_decides_but_changes_nothing(platform):
    backends = platform["backends"]
    register(platform, "fraud-dry", "shuffled", approve=True)
    register(platform, "fraud-dry", "good")
    before = len(list(backends.audit.records()))

    decision = promote(backends, "fraud-dry", policy=POLICY, dry_run=True)

    assert decision.outcome == "challenger" and decision.dry_run
    registry = backends.model_registry
    assert registry.champion("fraud-dry").version == 1
    assert registry.get("fraud-dry", 2).status == PENDING
    assert registry.challenger_version("fraud-dry") is None
    assert len(list(backends.audit.records())) == before


def test_too_small_a_holdout_is_no_decision_and_the_candidate_stays_pending(platform):
    backends = platform["backends"]
    register(platform, "fraud-unsure", "shuffled", approve=True)
    register(platform, "fraud-unsure", "good")
    before = len(list(backends.audit.records()))

    decision = promote(backends, "fraud-unsure", policy=replace(POLICY, min_holdout_positives=10**6))

    assert decision.outcome == "no-decision"
    assert decision.reasons[0].startswith("holdout too small: ")
    assert backends.model_registry.get("fraud-unsure", 2).status == PENDING
    assert backends.model_registry.champion("fraud-unsure").version == 1
    assert len(list(backends.audit.records())) == before


def test_nothing_pending_is_no_decision(platform):
    register(platform, "fraud-settled", "good", approve=True)
    decision = promote(platform["backends"], "fraud-settled", policy=POLICY)
    assert (decision.outcome, decision.reasons) == ("no-decision", ["no version is PendingManualApproval"])
    explicit = promote(platform["backends"], "fraud-settled", candidate_version=1, policy=POLICY)
    assert explicit.reasons == ["v1 is Approved, not PendingManualApproval"]


def test_module_entry_point_writes_the_report(platform, tmp_path, monkeypatch):
    backends = platform["backends"]
    register(platform, "fraud-cli", "good")
    monkeypatch.setenv("CDP_HOME", str(backends.settings.home))
    from cdp.settings import get_settings

    get_settings.cache_clear()
    report = tmp_path / "reports" / "fraud-cli.json"
    assert promotion_main(["fraud-cli", "--dry-run", "--report", str(report)]) == 3  # no identity: refused
    assert not report.exists()
    gate = issue(backends, "promotion-gate", "model-approver", path=tmp_path / "gate.token")
    monkeypatch.setenv("CDP_IDENTITY_FILE", str(gate))
    get_settings.cache_clear()
    assert promotion_main(["fraud-cli", "--dry-run", "--report", str(report)]) == 0
    doc = json.loads(report.read_text())
    assert doc["model_name"] == "fraud-cli" and doc["candidate_version"] == 1 and doc["dry_run"] is True
    assert doc["outcome"] in ("challenger", "rejected") and "pr_auc" in doc["metrics"]
    assert backends.model_registry.get("fraud-cli", 1).status == PENDING


# -- CLV and segmentation on small lake tables ------------------------------------------------------------


def _write_table(backends: Backends, name: str, columns: dict) -> None:
    table = LakeTable(name, pa.table(columns).schema)
    LakeWriter(backends.object_store, backends.settings.lake_bucket).replace_table(table, pa.table(columns))
    backends.catalog.register_table(table.info(backends.settings.lake_bucket))


@pytest.fixture(scope="module")
def customers(tmp_path_factory):
    backends = Backends(Settings(home=tmp_path_factory.mktemp("customers") / "home"))
    rng = np.random.default_rng(5)
    n = 300
    spend = rng.gamma(2.0, 50_000.0, n)
    heuristic = spend * rng.uniform(0.6, 1.4, n)
    _write_table(
        backends,
        "clv_training_set",
        {
            "user_token": [f"usr_{i}" for i in range(n)],
            "as_of": pa.array([datetime(2019, 3, 1)] * n, pa.timestamp("s")),
            "net_spend_365d": spend,
            "heuristic_last_12m": heuristic,
            "label": 0.9 * spend + rng.normal(0, 2_000.0, n),
            "split": ["test"] * n,
        },
    )
    # the fairness gates group the holdout's customers by the lake's customers table (gender, age band)
    _write_table(
        backends,
        "customers",
        {
            "user_token": [f"usr_{i}" for i in range(n)],
            "gender": ["Female" if i % 2 else "Male" for i in range(n)],
            "birth_year_band": [f"{b}-{b + 4}" for b in (1950 + 5 * (np.arange(n) % 8))],
        },
    )
    groups = rng.integers(0, 2, n)
    _write_table(
        backends,
        "segmentation_training_set",
        {
            "user_token": [f"usr_{i}" for i in range(n)],
            "net_spend_365d": np.where(groups == 0, 2_000.0, 900_000.0) * rng.uniform(0.8, 1.2, n),
            "channel_share_online_365d": np.where(groups == 0, 0.9, 0.05) + rng.normal(0, 0.03, n),
        },
    )
    return backends


def _clv_model(folder: Path, weight: float) -> Path:
    """A booster predicting `weight * net_spend_365d` (1.0 = close to the truth, 0.2 = far off)."""
    import xgboost

    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 50_000.0, (400, 1))
    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 3, "seed": 1, "nthread": 1},
        xgboost.DMatrix(x, label=weight * 0.9 * x[:, 0], feature_names=["net_spend_365d"]),
        num_boost_round=60,
    )
    folder.mkdir(parents=True)
    booster.save_model(str(folder / "model.ubj"))
    return folder


def _segmentation_model(folder: Path, centroids: list[list[float]]) -> Path:
    folder.mkdir(parents=True)
    doc = {
        "kind": "centroid_model",
        "format_version": 1,
        "features": ["net_spend_365d", "channel_share_online_365d"],
        "log1p_features": ["net_spend_365d"],
        "scaler": {"mean": [11.0, 0.5], "scale": [2.0, 0.4]},
        "centroids": centroids,
        "segments": [{"id": i, "name": f"segment {i}", "profile": {}} for i in range(len(centroids))],
    }
    (folder / "model.json").write_text(json.dumps(doc))
    return folder


def _register_folder(backends: Backends, name: str, folder: Path) -> int:
    features = load_scoring_model(folder).features
    lineage = Lineage("sha256:" + "0" * 64, features, "test", "run-1")
    return backends.model_registry.register(name, folder, {}, {}, lineage).version


def test_clv_candidate_is_judged_on_the_mae_ratio_to_the_heuristic(customers, tmp_path):
    registry = customers.model_registry
    _register_folder(customers, "cdp-clv", _clv_model(tmp_path / "clv-good", 1.0))
    registry.approve("cdp-clv", 1, "tester", "initial champion")
    _register_folder(customers, "cdp-clv", _clv_model(tmp_path / "clv-bad", 0.2))

    decision = promote(customers, "cdp-clv", policy=POLICY)

    ratio = decision.metrics["mae_ratio_to_heuristic"]
    assert ratio["candidate"] > ratio["champion"]
    assert decision.outcome == "rejected"
    assert not decision.gates["beats_champion_mae_ratio"].passed
    assert decision.reasons[0].startswith("mae_ratio_to_heuristic: candidate ")
    assert decision.holdout["source"] == "clv_training_set split=test"
    assert registry.champion("cdp-clv").version == 1


def test_segmentation_candidate_needs_silhouette_and_stability(customers, tmp_path):
    registry = customers.model_registry
    separating = [[-1.5, 1.0], [1.5, -1.0]]
    _register_folder(customers, "cdp-segmentation", _segmentation_model(tmp_path / "seg-1", separating))
    registry.approve("cdp-segmentation", 1, "tester", "initial champion")
    _register_folder(customers, "cdp-segmentation", _segmentation_model(tmp_path / "seg-2", separating[::-1]))
    one_segment = [[0.0, 0.0], [50.0, 50.0]]  # every customer lands in the first segment
    _register_folder(customers, "cdp-segmentation", _segmentation_model(tmp_path / "seg-3", one_segment))

    same = promote(customers, "cdp-segmentation", candidate_version=2, policy=POLICY)
    assert same.outcome == "challenger", same.reasons
    assert same.metrics["stability_ari"]["candidate"] == pytest.approx(1.0)  # same segments, renumbered

    worse = promote(customers, "cdp-segmentation", candidate_version=3, policy=POLICY)
    assert worse.outcome == "rejected"
    failed = {n for n, g in worse.gates.items() if not g.passed}
    assert {"beats_champion_silhouette", "min_stability_ari", "min_silhouette"} <= failed
    assert registry.champion("cdp-segmentation").version == 1  # v2 waits in shadow for the switch
    assert registry.challenger_version("cdp-segmentation") == 2


# -- metric rules -----------------------------------------------------------------------------------------


def test_calibration_error_is_zero_for_calibrated_scores_and_large_for_overconfident_ones():
    labels = np.array([0, 0, 0, 1] * 50, dtype=float)
    assert expected_calibration_error(labels, np.full(200, 0.25)) == pytest.approx(0.0)
    assert expected_calibration_error(labels, np.where(labels == 1, 0.99, 0.6)) > 0.4


def test_recall_at_budget_counts_frauds_in_the_top_of_the_ranking():
    labels = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0], dtype=float)
    scores = np.array([0.9, 0.8, 0.1, 0.1, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert recall_at_budget(labels, scores, 0.1) == 0.5  # one alert, one of two frauds
    assert recall_at_budget(labels, scores, 0.2) == 0.5  # 0.9 and 0.8
    assert recall_at_budget(labels, scores, 0.3) == 1.0  # 0.2 joins them
