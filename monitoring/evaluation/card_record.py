"""An evaluation on labelled external data, kept in the version's model card (`cdp evaluate --record`).

The card gets an `ExternalEvaluation` entry (newest first): the data's fingerprint, rows and frauds, the
threshold and alert budget, PR-AUC, ROC-AUC, precision and recall at the threshold and at the budget,
episode detection and calibration, each bootstrapped figure with its interval, who recorded it and when.
It is written through the registry port (`save_card`), so both registries keep it, and audited as
`record-evaluation`. Who may record is the access policy's `record-evaluation` action (the CLI checks it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp.registry.audit import NO_CUSTOMER
from cdp.registry.card_store import save
from cdp.registry.model_card import ExternalEvaluation, ModelCard, now_text, record_external_evaluation
from pipelines.model_cards import ensure_card

if TYPE_CHECKING:
    from cdp.backends import Backends
    from monitoring.evaluation.report import EvaluationReport

RECORD_ACTION = "record-evaluation"
CARD_FIGURES = ("pr_auc", "roc_auc", "precision_at_threshold", "recall_at_threshold", "precision_at_budget",
                "recall_at_budget", "episode_detection_rate", "brier", "ece")  # fmt: skip
EVALUATED_KIND = "classification"  # `cdp evaluate` measures fraud classifiers


def external_entry(report: EvaluationReport, by: str, role: str, at: str | None = None) -> ExternalEvaluation:
    """The card's summary of an evaluation report (figures and counts only, no row of the data)."""
    found = {**report.metrics, "episode_detection_rate": report.episodes.get("episode_detection_rate")}
    return ExternalEvaluation(
        at=at or now_text(),
        by=by,
        role=role,
        data=dict(report.data),
        rows=int(report.rows),
        frauds=int(report.frauds),
        threshold=float(report.threshold),
        alert_budget=float(report.alert_budget),
        metrics={name: found.get(name) for name in CARD_FIGURES if name in found},
        intervals={k: [float(x) for x in v] for k, v in report.confidence_intervals.items() if k in found},
        bootstrap=dict(report.bootstrap),
    )


def record_in_card(backends: Backends, report: EvaluationReport, by: str, role: str) -> ModelCard:
    """Add the evaluation to the version's card (written first if the version has none), then audit it.
    The registry refuses a card that looks like it holds personal data (`InvalidRegistrationError`)."""
    registry = backends.model_registry
    version = registry.get(report.model, report.version)
    card = ensure_card(registry, version, EVALUATED_KIND, backends.settings)
    entry = external_entry(report, by, role)
    card = record_external_evaluation(card, entry)
    save(registry, card)
    backends.audit.append(
        actor=by, role=role, action=RECORD_ACTION, customer_token=NO_CUSTOMER, fields=[], outcome="allowed",
        details={"model": report.model, "version": report.version, "sha256": entry.data.get("sha256", ""),
                 "rows": entry.rows, "frauds": entry.frauds, "pr_auc": entry.metrics.get("pr_auc")},
    )  # fmt: skip
    return card
