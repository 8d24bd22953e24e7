"""Contract of the model-registry port, run against both adapters: MLflow (local) and SageMaker (moto)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from cdp.objectstore.local import FolderObjectStore
from cdp.objectstore.port import ObjectStore
from cdp.objectstore.s3 import S3ObjectStore
from cdp.registry import (
    APPROVED,
    PENDING,
    REJECTED,
    InvalidModelNameError,
    InvalidRegistrationError,
    Lineage,
    ModelRegistry,
    ModelVersionNotFoundError,
)
from cdp.registry.mlflow_registry import MlflowModelRegistry
from cdp.registry.sagemaker_registry import SageMakerModelRegistry
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.sqlite import SqliteAuditLog
from cdp.security.errors import AccessDenied

BUCKET = "cdp-lake"
REGION = "eu-west-1"
FEATURES = ("amount", "velocity_1h", "new_merchant", "hour")
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


# -- shared builders (imported by the adapter-specific test modules) ---------------------------------
def training_frame(rows: int = 200, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=list(FEATURES))
    logit = 1.5 * frame["amount"] - frame["hour"] + rng.normal(scale=0.5, size=rows)
    return frame, (logit > 0).astype(int).to_numpy()


def write_tiny_model(folder: Path, fmt: str = "ubj") -> Path:
    """A real 10-tree XGBoost classifier trained on 200 random rows, saved as `model.<fmt>`."""
    import xgboost

    frame, labels = training_frame()
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2, "eta": 0.3, "seed": 1},
        xgboost.DMatrix(frame, label=labels),
        num_boost_round=10,
    )
    folder.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(folder / f"model.{fmt}"))
    (folder / "threshold.txt").write_text("0.5\n")
    return folder


def booster_probabilities(folder: Path, frame: pd.DataFrame) -> np.ndarray:
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(str(next(folder.glob("model.*"))))
    return booster.predict(xgboost.DMatrix(frame.loc[:, list(FEATURES)]))


def lineage(run: str = "run-1") -> Lineage:
    return Lineage(
        data_snapshot_hash="sha256:" + "ab" * 32,
        features=FEATURES,
        code_version="3f2c1e0",
        pipeline_run_id=run,
    )


def fresh_name() -> str:
    return f"m{uuid.uuid4().hex[:10]}"


def register(registry: ModelRegistry, name: str, model_dir: Path, **kwargs: object):  # noqa: ANN201
    return registry.register(
        name, model_dir, {"pr_auc": 0.41, "recall_at_budget": 0.63}, {"max_depth": 2, "eta": 0.3}, lineage(),
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


# -- fixtures -----------------------------------------------------------------------------------------
class Harness:
    def __init__(self, registry: ModelRegistry, audit: SqliteAuditLog, store: ObjectStore, kind: str) -> None:
        self.registry, self.audit, self.store, self.kind = registry, audit, store, kind


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "fraud-model")


@pytest.fixture(scope="module", params=["local", "aws"])
def harness(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    root = tmp_path_factory.mktemp(f"registry-{request.param}")
    audit = SqliteAuditLog(root / "audit.sqlite", AuditKeys.generate())
    if request.param == "local":
        store = FolderObjectStore(root / "lake")
        yield Harness(MlflowModelRegistry(root / "state", audit, store), audit, store, "local")
        return
    with pytest.MonkeyPatch.context() as mp:
        for key, value in AWS_ENV.items():
            mp.setenv(key, value)
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
            store = S3ObjectStore(s3)
            client = boto3.client("sagemaker", region_name=REGION)
            yield Harness(SageMakerModelRegistry(client, store, audit, BUCKET), audit, store, "aws")


@pytest.fixture
def registry(harness: Harness) -> ModelRegistry:
    return harness.registry


def audit_records(harness: Harness, name: str) -> list:
    return [r for r in harness.audit.records() if r.details.get("model") == name]


# -- the contract -------------------------------------------------------------------------------------
def test_adapter_satisfies_the_port(registry: ModelRegistry) -> None:
    assert isinstance(registry, ModelRegistry)


def test_register_records_metrics_params_lineage_plots_and_card(
    registry: ModelRegistry, model_dir: Path, tmp_path: Path
) -> None:
    plot = tmp_path / "pr.png"
    plot.write_bytes(b"\x89PNG\r\n\x1a\n fake image bytes")
    name = fresh_name()
    v1 = register(
        registry, name, model_dir, plots={"pr-curve": plot}, model_card="# Fraud model\nTrained on..."
    )
    assert (v1.model_name, v1.version, v1.status, v1.is_champion) == (name, 1, PENDING, False)
    assert v1.metrics == {"pr_auc": 0.41, "recall_at_budget": 0.63}
    assert v1.params == {"max_depth": "2", "eta": "0.3"}
    assert v1.lineage == lineage()
    assert set(v1.plots) == {"pr-curve"} and v1.plots["pr-curve"].endswith("pr-curve.png")
    assert v1.model_card_uri is not None
    assert v1.created_at.tzinfo is not None
    assert registry.get(name, 1) == v1

    v2 = register(registry, name, model_dir)
    assert v2.version == 2 and v2.plots == {} and v2.model_card_uri is None


def test_registering_as_approved_does_not_make_a_champion(registry: ModelRegistry, model_dir: Path) -> None:
    name = fresh_name()
    version = register(registry, name, model_dir, approval_status=APPROVED)
    assert version.status == APPROVED and not version.is_champion
    assert registry.champion(name) is None


def test_approve_moves_the_champion_and_keeps_the_old_one_approved(
    registry: ModelRegistry, model_dir: Path
) -> None:
    name = fresh_name()
    for _ in range(3):
        register(registry, name, model_dir)
    assert registry.champion(name) is None and registry.champion_version(name) is None

    first = registry.approve(name, 1, "alice", "beats baseline on holdout")
    assert (first.status, first.is_champion, first.status_reason) == (
        APPROVED,
        True,
        "beats baseline on holdout",
    )
    registry.approve(name, 2, "bob", "retrained on new month")
    champion = registry.champion(name)
    assert champion is not None and champion.version == 2
    assert registry.champion_version(name) == 2  # the cheap check agrees with the full description
    previous = registry.get(name, 1)
    assert (previous.status, previous.is_champion) == (APPROVED, False)
    assert registry.get(name, 3).status == PENDING

    registry.approve(name, 1, "alice", "rollback")  # approving an older version makes it champion again
    assert registry.champion(name).version == 1  # type: ignore[union-attr]
    assert [v.is_champion for v in registry.list(name)] == [True, False, False]


def test_reject_champion_leaves_no_champion(registry: ModelRegistry, model_dir: Path) -> None:
    name = fresh_name()
    register(registry, name, model_dir)
    register(registry, name, model_dir)
    registry.approve(name, 1, "alice", "ok")
    rejected = registry.reject(name, 2, "alice", "drift on amount")
    assert (rejected.status, rejected.is_champion) == (REJECTED, False)
    assert registry.champion(name).version == 1  # type: ignore[union-attr]  # rejecting another keeps it

    registry.reject(name, 1, "carol", "label leak found")
    assert registry.champion(name) is None and registry.champion_version(name) is None
    assert registry.get(name, 1).status == REJECTED
    with pytest.raises(ModelVersionNotFoundError):
        registry.load_model(name)


def test_load_model_returns_probabilities_of_the_registered_booster(
    registry: ModelRegistry, model_dir: Path
) -> None:
    name = fresh_name()
    register(registry, name, model_dir)
    registry.approve(name, 1, "alice", "ok")
    frame, _ = training_frame(rows=50, seed=11)
    expected = booster_probabilities(model_dir, frame)

    for model in (registry.load_model(name), registry.load_model(name, 1)):
        got = model.predict_proba(frame[list(reversed(FEATURES))])  # column order must not matter
        assert got.shape == (50,)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        assert ((got > 0) & (got < 1)).all() and len(np.unique(got)) > 2  # probabilities, not labels
        assert tuple(model.features) == FEATURES

    with pytest.raises(Exception, match="amount"):  # a missing feature is named
        registry.load_model(name, 1).predict_proba(frame.drop(columns=["amount"]))


def test_json_booster_registers_and_loads(registry: ModelRegistry, tmp_path: Path) -> None:
    folder = write_tiny_model(tmp_path / "json-model", fmt="json")
    name = fresh_name()
    register(registry, name, folder)
    frame, _ = training_frame(rows=20, seed=5)
    np.testing.assert_allclose(
        registry.load_model(name, 1).predict_proba(frame), booster_probabilities(folder, frame), rtol=1e-6
    )


def test_register_from_an_object_store_prefix(harness: Harness, model_dir: Path) -> None:
    prefix = f"s3://{BUCKET}/training-output/{fresh_name()}"
    for path in model_dir.iterdir():
        harness.store.put_file(f"{prefix}/{path.name}", path)
    name = fresh_name()
    version = harness.registry.register(name, prefix, {"pr_auc": 0.5}, {}, lineage())
    frame, _ = training_frame(rows=10, seed=2)
    np.testing.assert_allclose(
        harness.registry.load_model(name, version.version).predict_proba(frame),
        booster_probabilities(model_dir, frame),
        rtol=1e-6,
    )
    with pytest.raises(InvalidRegistrationError):
        harness.registry.register(name, f"s3://{BUCKET}/nothing-here", {}, {}, lineage())


def test_list_orders_by_model_then_version(registry: ModelRegistry, model_dir: Path) -> None:
    a, b = sorted([fresh_name(), fresh_name()])
    register(registry, b, model_dir)
    register(registry, a, model_dir)
    register(registry, b, model_dir)
    assert [(v.model_name, v.version) for v in registry.list(b)] == [(b, 1), (b, 2)]
    everything = [(v.model_name, v.version) for v in registry.list()]
    assert [x for x in everything if x[0] in (a, b)] == [(a, 1), (b, 1), (b, 2)]
    assert everything == sorted(everything)


def test_unknown_versions_and_bad_names(registry: ModelRegistry, model_dir: Path) -> None:
    name = fresh_name()
    with pytest.raises(ModelVersionNotFoundError):
        registry.get(name, 1)
    register(registry, name, model_dir)
    with pytest.raises(ModelVersionNotFoundError):
        registry.get(name, 2)
    assert registry.list(fresh_name()) == []
    for bad in ("Fraud", "fraud model", "-fraud", "a--b", "x" * 64, "../etc"):
        with pytest.raises(InvalidModelNameError):
            registry.get(bad, 1)
        with pytest.raises(InvalidModelNameError):
            register(registry, bad, model_dir)


def test_decisions_are_audited_with_a_placeholder_customer_token(harness: Harness, model_dir: Path) -> None:
    name = fresh_name()
    register(harness.registry, name, model_dir)
    harness.registry.approve(name, 1, "alice", "meets gates", role="model-approver")
    harness.registry.reject(name, 1, "bob", "bias review failed", role="risk-officer")
    with pytest.raises(ModelVersionNotFoundError):
        harness.registry.approve(name, 9, "alice", "typo")

    records = audit_records(harness, name)
    assert [(r.action, r.actor, r.role, r.outcome) for r in records] == [
        ("model-approve", "alice", "model-approver", "allowed"),
        ("model-reject", "bob", "risk-officer", "allowed"),
        ("model-approve", "alice", "model-approver", "failed"),
    ]
    assert all(r.customer_token == "-" and r.fields == () for r in records)
    assert dict(records[0].details) == {"model": name, "version": 1, "reason": "meets gates"}
    assert harness.audit.verify().ok


def test_personal_data_is_refused_before_anything_is_stored(harness: Harness, model_dir: Path) -> None:
    name = fresh_name()
    card_number = "4111111111111111"
    with pytest.raises(InvalidRegistrationError) as caught:
        harness.registry.register(name, model_dir, {"pr_auc": 0.4}, {"sample_pan": card_number}, lineage())
    assert card_number not in str(caught.value) and "sample_pan" in str(caught.value)
    with pytest.raises(InvalidRegistrationError):
        register(harness.registry, name, model_dir, model_card="Contact jane.doe@example.com for access")
    assert harness.registry.list(name) == []

    register(harness.registry, name, model_dir)
    with pytest.raises(InvalidRegistrationError):
        harness.registry.approve(name, 1, "alice", "customer jane.doe@example.com complained")
    with pytest.raises(InvalidRegistrationError):
        harness.registry.reject(name, 1, "alice", "  ")
    assert harness.registry.get(name, 1).status == PENDING
    assert audit_records(harness, name) == []


def test_lineage_must_name_the_model_features_in_order(registry: ModelRegistry, model_dir: Path) -> None:
    wrong = Lineage("sha256:00", tuple(reversed(FEATURES)), "3f2c1e0", "run-9")
    with pytest.raises(InvalidRegistrationError, match="features"):
        registry.register(fresh_name(), model_dir, {}, {}, wrong)


def test_a_folder_without_a_booster_is_refused(registry: ModelRegistry, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"not allowed")
    with pytest.raises(InvalidRegistrationError, match="booster"):
        registry.register(fresh_name(), tmp_path, {}, {}, lineage())
    with pytest.raises(InvalidRegistrationError):
        registry.register(fresh_name(), tmp_path / "missing", {}, {}, lineage())


def test_bad_status_metric_or_plot_is_refused(
    registry: ModelRegistry, model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidRegistrationError):
        register(registry, fresh_name(), model_dir, approval_status="approved")
    with pytest.raises(InvalidRegistrationError):
        registry.register(fresh_name(), model_dir, {"pr_auc": float("nan")}, {}, lineage())
    with pytest.raises(InvalidRegistrationError):
        register(registry, fresh_name(), model_dir, plots={"roc": tmp_path / "absent.png"})
    with pytest.raises(InvalidRegistrationError):
        register(registry, fresh_name(), model_dir, plots={"../roc": model_dir / "threshold.txt"})


def test_register_from_a_model_archive_local_or_in_the_object_store(
    harness: Harness, model_dir: Path, tmp_path: Path
) -> None:
    from cdp.registry.model_dir import pack

    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(pack(model_dir))
    remote = f"s3://{BUCKET}/pipeline-runs/{fresh_name()}/model.tar.gz"
    harness.store.put_file(remote, archive)
    frame, _ = training_frame(rows=10, seed=4)
    for source in (archive, remote):
        name = fresh_name()
        harness.registry.register(name, source, {"pr_auc": 0.5}, {}, lineage())
        np.testing.assert_allclose(
            harness.registry.load_model(name, 1).predict_proba(frame),
            booster_probabilities(model_dir, frame),
            rtol=1e-6,
        )
    with pytest.raises(InvalidRegistrationError):
        harness.registry.register(fresh_name(), f"s3://{BUCKET}/absent/model.tar.gz", {}, {}, lineage())


def test_a_json_file_that_is_not_a_booster_is_refused(registry: ModelRegistry, tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text('{"weights": [1, 2, 3]}')
    with pytest.raises(InvalidRegistrationError, match="XGBoost"):
        registry.register(fresh_name(), tmp_path, {}, {}, lineage())


def test_the_registrant_may_not_approve_its_own_version_and_the_refusal_is_audited(
    harness: Harness, model_dir: Path
) -> None:
    registry = harness.registry
    name = fresh_name()
    version = register(registry, name, model_dir, registered_by="ml-pipeline")
    assert version.registered_by == "ml-pipeline" and version.to_dict()["registered_by"] == "ml-pipeline"
    with pytest.raises(AccessDenied, match="separation of duties"):
        registry.approve(name, 1, "ml-pipeline", "looks fine to me", role="model-approver")
    assert registry.get(name, 1).status == PENDING and registry.champion(name) is None
    approved = registry.approve(name, 1, "approver-1", "reviewed", role="model-approver")
    assert approved.status == APPROVED and approved.registered_by == "ml-pipeline"
    records = audit_records(harness, name)
    assert [(r.actor, r.outcome) for r in records] == [("ml-pipeline", "denied"), ("approver-1", "allowed")]
    assert records[0].details["registered_by"] == "ml-pipeline"
    # the registrant may still reject its own version (stopping a release needs no second person)
    assert registry.reject(name, 1, "ml-pipeline", "withdrawn").status == REJECTED


# -- champion history, champion_at and rollback ---------------------------------------------------------
# (imports kept here so this block stays self-contained)
from datetime import UTC, datetime, timedelta  # noqa: E402

from cdp.registry import NoPreviousChampionError  # noqa: E402


def test_history_records_every_change_of_champion_append_only(
    registry: ModelRegistry, model_dir: Path
) -> None:
    name = fresh_name()
    for _ in range(3):
        register(registry, name, model_dir)
    assert registry.history(name) == [] and registry.history(fresh_name()) == []
    registry.approve(name, 1, "alice", "first release")
    registry.approve(name, 2, "bob", "retrained")
    registry.approve(name, 2, "bob", "approved again")  # no change of champion: no event
    registry.reject(name, 3, "carol", "not the champion")  # no change of champion: no event
    registry.reject(name, 2, "carol", "drift on amount")
    events = registry.history(name)
    assert [(e.model_name, e.version, e.change, e.actor, e.action, e.reason) for e in events] == [
        (name, 1, "became", "alice", "approve", "first release"),
        (name, 1, "stopped", "bob", "approve", "retrained"),
        (name, 2, "became", "bob", "approve", "retrained"),
        (name, 2, "stopped", "carol", "reject", "drift on amount"),
    ]
    assert all(e.at.utcoffset() == timedelta(0) for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert events[1].to_dict()["at"] == events[1].at.isoformat()

    registry.approve(name, 1, "alice", "back to the first")
    later = registry.history(name)
    assert later[:4] == events  # earlier records are never rewritten
    assert [(e.version, e.change) for e in later[4:]] == [(1, "became")]


def test_champion_at_answers_which_version_served_when(registry: ModelRegistry, model_dir: Path) -> None:
    name = fresh_name()
    register(registry, name, model_dir)
    register(registry, name, model_dir)
    assert registry.champion_at(name, datetime.now(UTC)) is None
    registry.approve(name, 1, "alice", "first release")
    registry.approve(name, 2, "bob", "retrained")
    registry.reject(name, 2, "carol", "drift")
    became_1, _, became_2, stopped_2 = (e.at for e in registry.history(name))
    assert registry.champion_at(name, became_1 - timedelta(seconds=1)) is None
    assert registry.champion_at(name, became_1) == 1
    assert registry.champion_at(name, became_1 + (became_2 - became_1) / 2) == 1
    assert registry.champion_at(name, became_2) == 2
    assert registry.champion_at(name, became_2.replace(tzinfo=None)) == 2  # naive times are UTC
    assert registry.champion_at(name, stopped_2) is None
    assert registry.champion_at(name, datetime.now(UTC) + timedelta(days=1)) is None


def test_rollback_brings_back_the_previous_champion_through_the_audited_approval(
    harness: Harness, model_dir: Path
) -> None:
    registry = harness.registry
    name = fresh_name()
    register(registry, name, model_dir, registered_by="ml-pipeline")
    register(registry, name, model_dir)
    with pytest.raises(NoPreviousChampionError):
        registry.rollback(name, "carol", "nothing to go back to")
    registry.approve(name, 1, "alice", "first release")
    registry.approve(name, 2, "bob", "retrained")

    # the registrant of the previous champion may not bring it back either (audited, nothing moves)
    with pytest.raises(AccessDenied, match="separation of duties"):
        registry.rollback(name, "ml-pipeline", "v2 misbehaves")
    assert registry.champion_version(name) == 2

    rolled = registry.rollback(name, "carol", "v2 misbehaves", role="model-approver")
    assert (rolled.version, rolled.status, rolled.is_champion, rolled.status_reason) == (
        1, APPROVED, True, "v2 misbehaves",
    )  # fmt: skip
    assert registry.champion_version(name) == 1  # what serving's champion poll sees: it reloads v1
    assert registry.champion(name).version == 1  # type: ignore[union-attr]
    assert [(e.version, e.change, e.actor, e.action) for e in registry.history(name)[-2:]] == [
        (2, "stopped", "carol", "rollback"),
        (1, "became", "carol", "rollback"),
    ]
    records = [r for r in audit_records(harness, name) if r.action == "model-rollback"]
    assert [(r.actor, r.outcome) for r in records] == [("ml-pipeline", "denied"), ("carol", "allowed")]
    assert dict(records[1].details) == {
        "model": name, "version": 1, "reason": "v2 misbehaves", "rolled_back_from": 2,
    }  # fmt: skip
    assert harness.audit.verify().ok

    # rolling back again returns to the champion the rollback replaced; a rejected one is never restored
    assert registry.rollback(name, "carol", "v1 was worse").version == 2
    registry.reject(name, 2, "carol", "label leak")
    assert registry.champion_version(name) is None
    assert registry.rollback(name, "dave", "restore the last good one").version == 1
    registry.reject(name, 1, "dave", "also leaks")
    with pytest.raises(NoPreviousChampionError):
        registry.rollback(name, "dave", "nothing good left")


# -- challenger in shadow, and evidence kept with a version ----------------------------------------------
def test_challenger_alias_moves_to_champion_on_approval(harness: Harness, model_dir: Path) -> None:
    registry, name = harness.registry, fresh_name()
    register(registry, name, model_dir, registered_by="ml-pipeline")
    register(registry, name, model_dir, registered_by="ml-pipeline")
    registry.approve(name, 1, "alice", "first champion")
    assert registry.challenger(name) is None and registry.challenger_version(name) is None

    marked = registry.set_challenger(name, 2, "promotion-gate", "passed the gate")
    assert (marked.is_challenger, marked.is_champion, marked.status) == (True, False, PENDING)
    assert registry.challenger_version(name) == 2 and registry.challenger(name).version == 2  # type: ignore[union-attr]
    assert registry.champion_version(name) == 1  # the challenger never serves
    assert [v.is_challenger for v in registry.list(name)] == [False, True]
    assert registry.get(name, 2).to_dict()["challenger"] is True

    switched = registry.approve(name, 2, "bob", "shadow comparison passed")
    assert (switched.is_champion, switched.is_challenger) == (True, False)
    assert registry.challenger_version(name) is None
    (record,) = [r for r in audit_records(harness, name) if r.action == "model-challenger"]
    assert (record.actor, record.outcome, record.details["version"]) == ("promotion-gate", "allowed", 2)


def test_rejecting_the_challenger_drops_the_alias_and_only_pending_versions_challenge(
    registry: ModelRegistry, model_dir: Path
) -> None:
    name = fresh_name()
    for _ in range(3):
        register(registry, name, model_dir)
    registry.approve(name, 1, "alice", "first champion")
    with pytest.raises(InvalidRegistrationError, match="only a pending version"):
        registry.set_challenger(name, 1, "promotion-gate", "the champion cannot challenge itself")
    registry.set_challenger(name, 2, "promotion-gate", "passed the gate")
    registry.set_challenger(name, 3, "promotion-gate", "a newer candidate passed")  # replaces v2
    assert registry.challenger_version(name) == 3 and not registry.get(name, 2).is_challenger
    registry.reject(name, 3, "promotion-gate", "shadow comparison failed")
    assert registry.challenger_version(name) is None and registry.champion_version(name) == 1


def test_evidence_is_kept_by_kind_and_refuses_personal_data(registry: ModelRegistry, model_dir: Path) -> None:
    name = fresh_name()
    register(registry, name, model_dir)
    assert registry.evidence(name, 1) == {}
    registry.record_evidence(name, 1, "shadow", {"events": 120, "agreement": 0.99, "passed": True})
    registry.record_evidence(name, 1, "approval", {"approver": "model-approver-1", "route": "manual"})
    registry.record_evidence(name, 1, "shadow", {"events": 240, "agreement": 0.98, "passed": True})
    assert registry.evidence(name, 1) == {
        "approval": {"approver": "model-approver-1", "route": "manual"},
        "shadow": {"events": 240, "agreement": 0.98, "passed": True},
    }
    with pytest.raises(InvalidRegistrationError, match="personal data"):
        registry.record_evidence(name, 1, "approval", {"approver": "jane.doe@example.com"})
    with pytest.raises(InvalidRegistrationError, match="kind"):
        registry.record_evidence(name, 1, "Bad Kind", {})
    with pytest.raises(ModelVersionNotFoundError):
        registry.record_evidence(name, 9, "shadow", {})


def test_model_card_revisions_are_kept_and_the_newest_is_read(
    registry: ModelRegistry, model_dir: Path
) -> None:
    from cdp.registry.model_card import ModelCard, record_approval, render_markdown

    name = fresh_name()
    register(registry, name, model_dir, registered_by="pipeline")
    assert registry.load_card(name, 1) is None
    card = ModelCard(
        model_name=name, version=1, kind="classification", intended_use="rank transactions for review",
        owner="fraud-analytics", training_data={"statement": "trained on synthetic data", "synthetic": True},
        features={"inputs": list(FEATURES)}, limitations=("labels arrive late",), registered_by="pipeline",
    )  # fmt: skip
    uri = registry.save_card(name, 1, card.to_dict(), render_markdown(card))
    assert uri.endswith(".md")
    assert ModelCard.from_dict(registry.load_card(name, 1)) == card  # type: ignore[arg-type]

    approved = record_approval(card, "alice")
    registry.save_card(name, 1, approved.to_dict(), render_markdown(approved))
    newest = ModelCard.from_dict(registry.load_card(name, 1))  # type: ignore[arg-type]
    assert (newest.approver, newest.owner) == ("alice", "fraud-analytics")
    # a second version has its own card, and a version that does not exist has none to write
    register(registry, name, model_dir)
    assert registry.load_card(name, 2) is None
    with pytest.raises(ModelVersionNotFoundError):
        registry.save_card(name, 9, card.to_dict(), render_markdown(card))


def test_a_model_card_with_personal_data_is_refused(registry: ModelRegistry, model_dir: Path) -> None:
    name = fresh_name()
    register(registry, name, model_dir)
    with pytest.raises(InvalidRegistrationError, match="model card"):
        registry.save_card(name, 1, {"owner": "jane.doe@example.com"}, "# card")
    with pytest.raises(InvalidRegistrationError, match="model card"):
        registry.save_card(name, 1, {"owner": "fraud"}, "# card for 4111111111111111")
    assert registry.load_card(name, 1) is None


# -- retirement -------------------------------------------------------------------------------------------
from cdp.registry import RETIRED, RetiredVersionError, RetireRefusedError  # noqa: E402


def test_retire_ends_a_version_for_good_never_the_champion_never_by_its_author(
    harness: Harness, model_dir: Path
) -> None:
    registry = harness.registry
    name = fresh_name()
    for _ in range(3):
        register(registry, name, model_dir, registered_by="ml-pipeline")
    registry.approve(name, 1, "approver-1", "first release")
    registry.approve(name, 2, "approver-1", "retrained")
    registry.set_challenger(name, 3, "promotion-gate", "passed the gate")

    with pytest.raises(RetireRefusedError, match="is the champion"):
        registry.retire(name, 2, "approver-1", "superseded")
    with pytest.raises(AccessDenied, match="may not retire it"):
        registry.retire(name, 1, "ml-pipeline", "superseded")
    assert registry.get(name, 1).status == APPROVED

    retired = registry.retire(name, 1, "approver-1", "superseded by v2, drifted")
    assert (retired.status, retired.status_reason) == (RETIRED, "superseded by v2, drifted")
    assert [v.status for v in registry.list(name)] == [RETIRED, APPROVED, PENDING]
    assert registry.retire(name, 3, "approver-1", "abandoned").is_challenger is False
    assert registry.challenger_version(name) is None  # retiring the challenger drops its alias

    for attempt in (
        lambda: registry.approve(name, 1, "approver-1", "bring it back"),
        lambda: registry.set_challenger(name, 3, "promotion-gate", "again"),
        lambda: registry.retire(name, 1, "approver-1", "twice"),
    ):
        with pytest.raises(RetiredVersionError, match="is retired"):
            attempt()
    assert registry.champion_version(name) == 2
    with pytest.raises(NoPreviousChampionError):  # v1, the only earlier champion, is retired
        registry.rollback(name, "approver-1", "v2 drifts")

    outcomes = [
        (r.action, r.actor, r.outcome) for r in audit_records(harness, name) if r.action == "model-retire"
    ]
    assert outcomes == [
        ("model-retire", "approver-1", "failed"), ("model-retire", "ml-pipeline", "denied"),
        ("model-retire", "approver-1", "allowed"), ("model-retire", "approver-1", "allowed"),
        ("model-retire", "approver-1", "failed"),
    ]  # fmt: skip


def test_a_retired_sagemaker_package_is_rejected_for_sagemaker_and_marked(
    harness: Harness, model_dir: Path
) -> None:
    if harness.kind != "aws":
        pytest.skip("SageMaker's own view of a retired package")
    registry = harness.registry
    name = fresh_name()
    register(registry, name, model_dir)
    registry.retire(name, 1, "approver-1", "never released")
    group = registry._sm.describe_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]  # type: ignore[attr-defined]
    package = registry._sm.describe_model_package(ModelPackageName=registry._package_arn(group, 1))  # type: ignore[attr-defined]
    assert package["ModelApprovalStatus"] == REJECTED
    assert "cdp:retired" in package["CustomerMetadataProperties"]
    assert package["CustomerMetadataProperties"].get("registration_uri")  # the rest of the metadata kept
