"""Gated promotion: a pending model version becomes the challenger only if it beats the champion on the
same unseen holdout and passes every gate (floors, calibration, serving latency, PII scan of its files);
it becomes champion after its shadow run beside the champion and the approval policy (`switch`)."""

from monitoring.promotion.decision import (
    APPROVED,
    CHALLENGER,
    NO_DECISION,
    REJECTED,
    GateResult,
    PromotionDecision,
)
from monitoring.promotion.policy import PromotionPolicy
from monitoring.promotion.promote import promote

__all__ = [
    "APPROVED",
    "CHALLENGER",
    "NO_DECISION",
    "REJECTED",
    "GateResult",
    "PromotionDecision",
    "PromotionPolicy",
    "promote",
]
