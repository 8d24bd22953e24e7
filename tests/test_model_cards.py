"""Model cards: written when a pipeline registers a version, updated by approvals, shown by
`cdp models card` and summarised by `cdp models inventory`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.main import app
from cdp.backends import Backends
from cdp.registry.commands import approve_model
from cdp.registry.inventory import inventory
from cdp.registry.model_card import (
    PIPELINE_EVALUATION,
    CardError,
    ModelCard,
    Validation,
    record_approval,
    record_validation,
    render_markdown,
)
from cdp.settings import Settings
from cdp.synth.ground_truth import write_manifest
from cdp.synth.provenance import training_data_origin
from pipelines.local.registry_adapter import registry_registrar
from tests.contract.test_registry_contract import FEATURES, write_tiny_model

REPORT = {
    "metrics": {"pr_auc": {"value": 0.41}, "recall_at_budget": {"value": 0.6}, "brier_score": {"value": 0.01}}
}


def _card(**changes) -> ModelCard:
    base = ModelCard(
        model_name="cdp-fraud", version=1, kind="classification", intended_use="rank transactions",
        owner="fraud-analytics", training_data={"statement": "Trained on synthetic data."},
        features={"inputs": list(FEATURES)}, registered_by="pipeline-runner",
    )  # fmt: skip
    return ModelCard(**{**base.__dict__, **changes})


def _register_with_pipeline_registrar(backends: Backends, tmp_path: Path, name: str = "cdp-fraud") -> int:
    """What the local executor's RegisterModel step does: the model and the evaluate step's outputs in the
    object store, then the registrar."""
    store = backends.object_store
    folder = write_tiny_model(tmp_path / "model")
    base = f"s3://{backends.settings.lake_bucket}/pipelines/run-1"
    for file in folder.iterdir():
        store.put_file(f"{base}/model/{file.name}", file)
    store.put_bytes(f"{base}/evaluation/evaluation.json", json.dumps(REPORT).encode())
    store.put_bytes(f"{base}/evaluation/model_card.md", b"# Fraud\nNarrative of the evaluation.\n")
    register = registry_registrar(
        backends.model_registry, store, version="git:test", registered_by="pipeline-runner",
        settings=backends.settings,
    )  # fmt: skip
    lineage = {"pipeline_name": name, "execution_id": "e1", "definition_sha256": "ab" * 32,
               "step": "Register", "metrics_uri": f"{base}/evaluation/evaluation.json"}  # fmt: skip
    metrics = {k: v["value"] for k, v in REPORT["metrics"].items()}
    return register(model_name=name, artifacts_uri=f"{base}/model", metrics=metrics, lineage=lineage)


@pytest.fixture
def backends(isolated_home) -> Backends:
    return Backends(Settings(home=isolated_home))


# -- the card itself --------------------------------------------------------------------------------------


def test_the_registrant_may_not_approve_and_the_approver_is_named():
    card = _card()
    with pytest.raises(CardError, match="registered"):
        record_approval(card, "pipeline-runner")
    with pytest.raises(CardError, match="named approver"):
        record_approval(card, " ")
    approved = record_approval(card, "alice", datetime(2026, 1, 2, tzinfo=UTC))
    assert (approved.approver, approved.approved_at) == ("alice", "2026-01-02T00:00:00+00:00")
    assert card.approver is None  # cards are values: a change is a new card (a new registry revision)
    assert "approver: alice at 2026-01-02" in render_markdown(approved)
    assert ModelCard.from_dict(json.loads(json.dumps(approved.to_dict()))) == approved


def test_next_review_is_the_last_validation_plus_the_review_period():
    card = _card()
    assert card.last_validation is None and card.next_review(365) is None
    older = Validation(
        at="2025-01-01T00:00:00+00:00", by=PIPELINE_EVALUATION, outcome="evaluated", data="test"
    )
    newer = Validation(
        at="2025-06-01T00:00:00+00:00", by="promotion-gate", outcome="approved", data="holdout"
    )
    card = record_validation(record_validation(card, newer), older)
    assert card.last_validation == newer
    assert card.next_review(365) == datetime(2025, 6, 1, tzinfo=UTC) + timedelta(days=365)
    assert card.latest(PIPELINE_EVALUATION) == older


def test_training_data_origin_says_synthetic_only_when_it_is_known(tmp_path):
    settings = Settings(home=tmp_path / "a")
    unknown = training_data_origin(settings)
    assert unknown["synthetic"] is None and "synthetic data" not in unknown["statement"].lower()
    declared = training_data_origin(Settings(home=tmp_path / "a", source_data_synthetic=True))
    assert declared["synthetic"] is True and "trained on synthetic data" in declared["statement"].lower()
    real = training_data_origin(Settings(home=tmp_path / "a", source_data_synthetic=False))
    assert real["synthetic"] is False and "real customer data" in real["statement"]
    settings.ground_truth_dir.mkdir(parents=True)
    write_manifest(settings.ground_truth_dir, {"generator_version": 4, "seed": 11, "users": 15})
    generated = training_data_origin(Settings(home=tmp_path / "a", source_data_synthetic=False))
    assert generated["synthetic"] is True and generated["origin"] == "generated"
    assert generated["statement"].startswith("Trained on synthetic data: written by the platform's generator")
    assert "seed 11, 15 users" in generated["statement"]


# -- written at registration ------------------------------------------------------------------------------


def test_a_pipeline_registration_writes_the_card_and_keeps_the_evaluation_narrative(backends, tmp_path):
    truth = backends.settings.ground_truth_dir
    truth.mkdir(parents=True)
    write_manifest(truth, {"generator_version": 4, "seed": 7, "users": 6})
    version = _register_with_pipeline_registrar(backends, tmp_path)
    registry = backends.model_registry
    registered = registry.get("cdp-fraud", version)
    narrative = Path(str(registered.model_card_uri).removeprefix("file://")).read_text()
    assert "Narrative of the evaluation" in narrative

    card = ModelCard.from_dict(registry.load_card("cdp-fraud", version))
    assert (card.kind, card.owner, card.registered_by, card.approver) == (
        "classification", "fraud-analytics", "pipeline-runner", None,
    )  # fmt: skip
    assert "not for credit" in card.intended_use
    assert card.training_data["synthetic"] is True
    assert card.training_data["pipeline_run_id"] == "cdp-fraud/e1"
    assert card.features["inputs"] == list(FEATURES) and card.features["protected_inputs"] == []
    assert {"gender", "age_band_start"} <= set(card.features["protected_excluded"])
    (evaluated,) = card.validations
    assert evaluated.by == PIPELINE_EVALUATION
    assert evaluated.metrics == {"pr_auc": 0.41, "recall_at_budget": 0.6}
    assert evaluated.calibration == {"brier_score": 0.01}
    assert any("calibration" in line for line in card.limitations)


def test_owners_come_from_the_settings_when_given(isolated_home, tmp_path):
    backends = Backends(Settings(home=isolated_home, model_owners={"cdp-clv": "crm-team"}))
    version = _register_with_pipeline_registrar(backends, tmp_path, name="cdp-clv")
    card = ModelCard.from_dict(backends.model_registry.load_card("cdp-clv", version))
    assert card.owner == "crm-team"
    assert "income" in " ".join(card.limitations).lower()  # the CLV card names the proxies of protected ones


def test_an_approval_through_the_cli_path_names_the_approver(backends, tmp_path):
    version = _register_with_pipeline_registrar(backends, tmp_path)
    registry = backends.model_registry
    approve_model(registry, "cdp-fraud", version, "model-risk-alice", "reviewed")
    card = ModelCard.from_dict(registry.load_card("cdp-fraud", version))
    assert card.approver == "model-risk-alice" and card.approved_at is not None


# -- the commands -----------------------------------------------------------------------------------------


def test_cdp_models_card_and_inventory(backends, tmp_path):
    version = _register_with_pipeline_registrar(backends, tmp_path)
    backends.model_registry.approve("cdp-fraud", version, "model-risk-alice", "reviewed")
    runner = CliRunner()

    shown = runner.invoke(app, ["models", "card", "cdp-fraud", str(version)])
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith(f"# Model card: cdp-fraud v{version}")
    for section in ("## Intended use", "## Training data", "## Features", "## Validation evidence",
                    "## Limitations", "owner: fraud-analytics"):  # fmt: skip
        assert section in shown.output
    as_json = runner.invoke(app, ["models", "card", "cdp-fraud", "champion", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["version"] == version

    missing = runner.invoke(app, ["models", "card", "cdp-fraud", "9"])
    assert missing.exit_code != 0 and "Traceback" not in missing.output

    listed = runner.invoke(app, ["models", "inventory", "--json"])
    assert listed.exit_code == 0, listed.output
    (entry,) = json.loads(listed.output)
    assert (entry["model_name"], entry["status"], entry["champion"], entry["owner"]) == (
        "cdp-fraud", "Approved", True, "fraud-analytics",
    )  # fmt: skip
    registered = backends.model_registry.get("cdp-fraud", version).created_at
    assert entry["next_review"] == (registered + timedelta(days=365)).date().isoformat()
    assert entry["last_validated_by"] == PIPELINE_EVALUATION and not entry["overdue"]
    table = runner.invoke(app, ["models", "inventory"])
    assert table.exit_code == 0 and "model inventory" in table.output and "cdp-" in table.output


def test_inventory_flags_overdue_reviews_and_versions_without_a_card(backends, tmp_path):
    _register_with_pipeline_registrar(backends, tmp_path)
    registry = backends.model_registry
    lineage = registry.get("cdp-fraud", 1).lineage
    registry.register("cdp-fraud", write_tiny_model(tmp_path / "bare"), {}, {}, lineage)  # no card
    later = datetime.now(UTC) + timedelta(days=400)
    first, bare = inventory(registry, review_days=365, now=later)
    assert first.overdue and first.owner == "fraud-analytics"
    assert (bare.version, bare.owner, bare.next_review, bare.overdue) == (2, None, None, False)
