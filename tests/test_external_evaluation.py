"""`cdp evaluate --record`: an evaluation on labelled data kept in the version's model card as a labelled
external evaluation (newest first, shown by `cdp models card`), only for a role that may record evidence,
with no personal data; the entry round-trips through both registries."""

from __future__ import annotations

import hashlib
import json

import pytest

from cdp.registry import card_store
from cdp.registry.model_card import ExternalEvaluation, ModelCard, record_external_evaluation, render_markdown
from tests.contract.test_registry_contract import harness, model_dir, register  # noqa: F401 - fixtures
from tests.identity_support import issue
from tests.test_batch_score import MODEL, platform, rows_of  # noqa: F401 - the module's platform fixture
from tests.test_identity import cli, refused_line

ROUNDS = "20"


def _evaluate(platform, *extra: str, identity=None):  # noqa: ANN001, ANN202, F811
    env = {"CDP_HOME": str(platform["backends"].settings.home), "CDP_WORKERS": "1",
           "CDP_EVALUATE_BOOTSTRAP_ROUNDS": ROUNDS}  # fmt: skip
    return cli("evaluate", str(platform["source"]), "--model", MODEL, *extra, identity=identity, **env)


def _card(platform, version: int = 1) -> ModelCard:  # noqa: F811
    return card_store.load(platform["backends"].model_registry, MODEL, version)


def test_a_caller_without_the_role_is_refused_in_one_line_before_anything_is_recorded(platform):  # noqa: F811
    b = platform["backends"]
    analyst = issue(b, "analyst-1", "analyst")
    line = refused_line(_evaluate(platform, "--version", "2", "--record", identity=analyst))
    assert "may not record-evaluation: needs data-scientist or model-approver" in line
    assert refused_line(_evaluate(platform, "--version", "2", "--record"))  # no identity at all
    assert b.model_registry.load_card(MODEL, 2) is None  # nothing written, not even a first card
    assert [r.outcome for r in b.audit.records() if r.action == "record-evaluation"] == ["denied", "denied"]


def test_recorded_evaluations_are_in_the_card_newest_first_with_no_personal_data(platform, tmp_path):  # noqa: F811
    b = platform["backends"]
    scientist = issue(b, "data-scientist-1", "data-scientist")
    approver = issue(b, "model-approver-1", "model-approver")

    plain = _evaluate(platform, "--version", "1", identity=scientist)  # without --record: nothing kept
    assert plain.exit_code == 0, plain.output
    assert "recorded in the model card" not in plain.stdout
    assert b.model_registry.load_card(MODEL, 1) is None

    first = _evaluate(platform, "--version", "1", "--record", identity=scientist)
    assert first.exit_code == 0, first.output
    assert f"recorded in the model card of {MODEL} v1" in first.stdout
    second = _evaluate(platform, "--record", identity=approver)  # the champion, v1
    assert second.exit_code == 0, second.output

    card = _card(platform)
    newest, older = card.external_evaluations
    assert (newest.by, newest.role, older.by, older.role) == (
        "model-approver-1", "model-approver", "data-scientist-1", "data-scientist",
    )  # fmt: skip
    assert newest.at >= older.at
    digest = hashlib.sha256(platform["source"].read_bytes()).hexdigest()
    report = json.loads((b.settings.home / "evaluations" / f"{MODEL}-v1-{platform['source'].stem}" /
                         "evaluation.json").read_text())  # fmt: skip
    assert newest.data["sha256"] == digest == report["data"]["sha256"]
    html_page = b.settings.home / "evaluations" / f"{MODEL}-v1-{platform['source'].stem}" / "evaluation.html"
    assert digest in html_page.read_text()
    assert newest.data["source"] == platform["source"].name
    assert (newest.rows, newest.frauds) == (report["rows"], report["frauds"]) and newest.frauds > 0
    assert newest.metrics["pr_auc"] == pytest.approx(report["metrics"]["pr_auc"])
    low, high = newest.intervals["pr_auc"]
    assert low <= newest.metrics["pr_auc"] <= high
    for name in ("recall_at_threshold", "precision_at_threshold", "recall_at_budget", "precision_at_budget"):
        assert name in newest.metrics and name in newest.intervals
    assert newest.bootstrap["rounds"] == int(ROUNDS)

    shown = cli("models", "card", MODEL, "1", CDP_HOME=str(b.settings.home))
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    section = text[text.index("## Labelled external evaluations") : text.index("## Limitations")]
    assert section.index("by model-approver-1") < section.index("by data-scientist-1")  # newest first
    assert f"sha256 {digest} (of the file's bytes)" in section
    assert f"{newest.rows:,} labelled rows, {newest.frauds:,} frauds" in section
    assert f"| pr_auc | {newest.metrics['pr_auc']:.4g} | {low:.4g}-{high:.4g} |" in section
    assert "independent of the registrant" in section

    ibm = platform["root"] / "ibm"
    secrets = set()
    for row in rows_of(ibm / "sd254_users.csv")[1:]:
        secrets |= {row[0], row[6]}  # name, address
    for row in rows_of(ibm / "sd254_cards.csv")[1:]:
        secrets |= {row[4], row[5]}  # card number, expiry
    stored = json.dumps(card.to_dict()) + render_markdown(card)
    assert not [s for s in secrets if s and s in stored]
    records = [r for r in b.audit.records() if r.action == "record-evaluation" and r.outcome == "allowed"]
    assert [(r.actor, r.details["sha256"]) for r in records] == [
        ("data-scientist-1", digest), ("model-approver-1", digest),
    ]  # fmt: skip


def _entry(at: str, by: str) -> ExternalEvaluation:
    return ExternalEvaluation(
        at=at, by=by, role="model-approver", data={"source": "bank-confirmed.csv", "sha256": "ab" * 32,
        "hashed": "file's bytes"}, rows=1200, frauds=14, threshold=0.2, alert_budget=0.005,
        metrics={"pr_auc": 0.41, "recall_at_budget": 0.6}, intervals={"pr_auc": [0.3, 0.5]},
        bootstrap={"rounds": 200, "level": 0.95, "unit": "fraud episode"},
    )  # fmt: skip


def test_external_evaluations_round_trip_through_both_registries(harness, model_dir):  # noqa: F811
    registry = harness.registry
    name = f"ext-{harness.kind}"
    version = register(registry, name, model_dir).version
    card = ModelCard(model_name=name, version=version, kind="classification", intended_use="rank",
                     owner="fraud-analytics", training_data={}, features={})  # fmt: skip
    card = record_external_evaluation(card, _entry("2026-01-01T00:00:00+00:00", "alice"))
    card = record_external_evaluation(card, _entry("2026-03-01T00:00:00+00:00", "bob"))
    card_store.save(registry, card)
    loaded = card_store.load(registry, name, version)
    assert loaded == card and [e.by for e in loaded.external_evaluations] == ["bob", "alice"]
    assert "95% bootstrap interval" in render_markdown(loaded)
