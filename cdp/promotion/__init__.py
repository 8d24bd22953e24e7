"""Gated promotion: a pending model version becomes champion only if it beats the champion on the same
unseen holdout and passes every gate (floors, calibration, serving latency, PII scan of its files)."""

from cdp.promotion.decision import APPROVED, NO_DECISION, REJECTED, GateResult, PromotionDecision
from cdp.promotion.policy import PromotionPolicy
from cdp.promotion.promote import promote

__all__ = [
    "APPROVED",
    "NO_DECISION",
    "REJECTED",
    "GateResult",
    "PromotionDecision",
    "PromotionPolicy",
    "promote",
]
