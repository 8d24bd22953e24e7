"""The promotion gate's judgement as validation evidence in the candidate's model card.

Before the registry records the decision, the card (written at registration, or now for a version a
SageMaker pipeline registered) gets a validation entry: the holdout it was judged on, the candidate's
metrics, calibration and fairness figures, and the outcome. An approval then names the approver.
A dry run or a no-decision writes nothing.
"""

from __future__ import annotations

from cdp.backends import Backends
from cdp.registry.card_store import save, store_approval
from cdp.registry.model_card import PROMOTION_GATE, ModelCard, Validation, now_text, record_validation
from cdp.registry.port import ModelVersion
from monitoring.promotion.gates import Evaluation
from pipelines.model_cards import ensure_card

CALIBRATION = frozenset({"brier", "ece"})


def holdout_text(evaluation: Evaluation) -> str:
    """What the holdout was, in one line (counts, source, time range: no row values)."""
    d = evaluation.description
    parts = [f"{d.get('rows', evaluation.holdout.rows if evaluation.holdout else '?')} holdout rows"]
    if d.get("positives") is not None:
        parts.append(f"{d['positives']} labelled positives")
    if d.get("source"):
        parts.append(f"from {d['source']}")
    if d.get("first_ts") and d.get("last_ts"):
        parts.append(f"{str(d['first_ts'])[:10]} to {str(d['last_ts'])[:10]}")
    elif d.get("as_of"):
        parts.append(f"as of {str(d['as_of'])[:10]}")
    return ", ".join(parts) + " (unseen by the candidate's training)"


def record_judgement(
    backends: Backends, candidate: ModelVersion, kind: str, outcome: str, evaluation: Evaluation
) -> ModelCard:
    """Add the gate's validation to the candidate's card (a new revision); returns the card."""
    registry = backends.model_registry
    card = ensure_card(registry, candidate, kind, backends.settings)
    figures = {name: values.get("candidate") for name, values in evaluation.metrics.items()}
    validation = Validation(
        at=now_text(),
        by=PROMOTION_GATE,
        outcome=outcome,
        data=holdout_text(evaluation),
        metrics={k: v for k, v in figures.items() if k not in CALIBRATION},
        calibration={k: v for k, v in figures.items() if k in CALIBRATION},
        fairness=evaluation.fairness,
    )
    card = record_validation(card, validation)
    save(registry, card)
    return card


def record_approver(backends: Backends, candidate: ModelVersion, approver: str) -> None:
    """Name the approver in the card once the registry has accepted the approval."""
    store_approval(backends.model_registry, candidate.model_name, candidate.version, approver)
