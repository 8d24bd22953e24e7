"""Gated promotion: a pending model version becomes champion only if it beats the champion on the same
unseen holdout and passes every gate (floors, calibration, serving latency, PII scan of its files)."""

from monitoring.promotion.decision import APPROVED, NO_DECISION, REJECTED, GateResult, PromotionDecision
from monitoring.promotion.policy import PromotionPolicy
from monitoring.promotion.promote import promote

__all__ = [
    "APPROVED",
    "NO_DECISION",
    "REJECTED",
    "GateResult",
    "PromotionDecision",
    "PromotionPolicy",
    "promote",
]
