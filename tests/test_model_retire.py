"""`cdp models retire`: only a model-approver who is not the author, never the champion; the retired
version is shown in its card and the inventory, and the promotion gate and the switch refuse it."""

from __future__ import annotations

import json

import pytest

from cdp.backends import Backends
from cdp.registry.approval import ApprovalRefused, check_manual_approval
from cdp.registry.port import RETIRED
from cdp.settings import Settings
from monitoring.promotion.decision import NO_DECISION
from monitoring.promotion.promote import newest_pending, promote
from tests.identity_support import issue
from tests.test_identity import cli, refused_line
from tests.test_model_cards import _register_with_pipeline_registrar

MODEL = "cdp-fraud"


@pytest.fixture
def backends(isolated_home) -> Backends:
    return Backends(Settings(home=isolated_home))


def test_retire_through_the_cli_card_inventory_and_audit(backends, tmp_path, monkeypatch):
    _register_with_pipeline_registrar(backends, tmp_path / "a")
    _register_with_pipeline_registrar(backends, tmp_path / "b")
    backends.model_registry.approve(MODEL, 1, "model-risk-alice", "first champion")
    scientist = issue(backends, "data-scientist-1", "data-scientist")
    author = issue(backends, "pipeline-runner", "model-approver")  # registered both versions
    approver = issue(backends, "approver-1", "model-approver")

    line = refused_line(cli("models", "retire", MODEL, "2", "--reason", "obsolete", identity=scientist))
    assert "may not model-retire: needs model-approver" in line
    line = refused_line(cli("models", "retire", MODEL, "2", "--reason", "obsolete", identity=author))
    assert "separation of duties" in line and "may not retire it" in line
    line = refused_line(cli("models", "retire", MODEL, "1", "--reason", "obsolete", identity=approver))
    assert f"{MODEL} v1 is the champion" in line and "roll back" in line
    assert backends.model_registry.get(MODEL, 2).status != RETIRED

    done = cli("models", "retire", MODEL, "2", "--reason", "superseded before release", identity=approver)
    assert done.exit_code == 0, done.output
    assert f"{MODEL} v2: retired" in done.stdout
    again = refused_line(cli("models", "retire", MODEL, "2", "--reason", "twice", identity=approver))
    assert "is retired" in again

    card = cli("models", "card", MODEL, "2")
    assert card.exit_code == 0, card.output
    assert "- RETIRED by approver-1 at " in card.stdout and ": superseded before release" in card.stdout
    listed = cli("models", "inventory", "--json")
    entries = {e["version"]: e for e in json.loads(listed.stdout)}
    assert (entries[2]["status"], entries[2]["next_review"], entries[2]["overdue"]) == (RETIRED, None, False)
    assert entries[1]["status"] == "Approved" and entries[1]["next_review"] is not None
    from cdp.console.output import console

    monkeypatch.setattr(console, "_width", 200)  # the CLI's console is made once, at import: COLUMNS is late
    table = cli("models", "inventory")
    assert "Retired" in table.stdout and "retired" in table.stdout

    outcomes = [(r.actor, r.outcome) for r in backends.audit.records() if r.action == "model-retire"]
    assert outcomes == [
        ("data-scientist-1", "denied"), ("pipeline-runner", "denied"), ("approver-1", "failed"),
        ("approver-1", "allowed"), ("approver-1", "failed"),
    ]  # fmt: skip


def test_the_gate_and_the_switch_refuse_a_retired_version(backends, tmp_path):
    _register_with_pipeline_registrar(backends, tmp_path / "a")
    registry = backends.model_registry
    registry.retire(MODEL, 1, "approver-1", "never released")

    assert newest_pending(registry.list(MODEL)) is None  # the gate never picks it by itself
    decision = promote(backends, MODEL, candidate_version=1)
    assert decision.outcome == NO_DECISION
    assert decision.reasons == ["v1 is retired: a retired version is never promoted again"]
    assert registry.get(MODEL, 1).status == RETIRED and registry.challenger_version(MODEL) is None

    with pytest.raises(ApprovalRefused, match="is retired"):
        check_manual_approval(registry, MODEL, 1, "approver-1", "approver-1")
    approver = issue(backends, "approver-1", "model-approver")
    line = refused_line(cli("models", "approve", MODEL, "1", "--as", "approver-1", identity=approver))
    assert f"{MODEL} v1 is retired" in line
    assert registry.champion_version(MODEL) is None
