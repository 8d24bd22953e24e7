"""The promotion policy: margins, floors and limits a candidate must meet to become champion."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cdp.settings import Settings
    from monitoring.promotion.fairness import FairnessLimits

SETTINGS_PREFIX = "promotion_"
FAIRNESS_PREFIX = "fairness_"  # the fairness limits are settings of their own (CDP_FAIRNESS_*)


@dataclass(frozen=True)
class PromotionPolicy:
    """Every threshold of the promotion gate (one setting each, `CDP_PROMOTION_<FIELD>`).

    Margins are what the candidate must gain over the champion on the primary metric, on the same holdout:
    fraud PR-AUC `candidate >= champion + fraud_pr_auc_margin`; CLV MAE ratio to the heuristic
    `candidate <= champion * (1 - clv_mae_ratio_margin)`; segmentation silhouette
    `candidate >= champion + segmentation_silhouette_margin` (a negative margin tolerates a small loss).
    """

    # primary-metric margins over the champion
    fraud_pr_auc_margin: float = 0.005
    clv_mae_ratio_margin: float = 0.01
    segmentation_silhouette_margin: float = -0.02
    # floors (the candidate alone)
    min_fraud_pr_auc: float = 0.10
    min_fraud_recall_at_budget: float = 0.0
    max_clv_mae_ratio: float = 1.0
    min_segmentation_silhouette: float = 0.10
    min_segmentation_stability: float = 0.5  # adjusted Rand index of candidate vs champion assignments
    # calibration of fraud probabilities
    max_fraud_brier: float = 0.05
    max_fraud_ece: float = 0.05
    # serving latency: p99 of single-row scoring through the serving code path
    max_latency_p99_ms: float = 50.0
    latency_rows: int = 200
    # the holdout
    min_holdout_rows: int = 500
    min_holdout_positives: int = 20
    max_holdout_rows: int = 200_000  # newest labelled rows kept (fraud)
    min_holdout_customers: int = 20  # CLV and segmentation holdouts are customers, not transactions
    alert_budget: float = 0.005  # share of transactions reviewed (recall at budget)
    # fairness by gender and age band (monitoring/promotion/fairness.py; settings CDP_FAIRNESS_*)
    fairness_max_ratio: float = 1.25
    fairness_min_ratio: float = 0.8
    fairness_confidence: float = 0.95
    fairness_min_group_customers: int = 30
    fairness_gate_segments: bool = False

    def __post_init__(self) -> None:
        if self.latency_rows < 1:
            raise ValueError("latency_rows must be at least 1")
        if self.min_holdout_rows < 1 or self.max_holdout_rows < self.min_holdout_rows:
            raise ValueError("holdout sizes must satisfy 1 <= min_holdout_rows <= max_holdout_rows")
        if not 0 < self.alert_budget < 1:
            raise ValueError("alert_budget must be between 0 and 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def fairness(self) -> FairnessLimits:
        from monitoring.promotion.fairness import FairnessLimits

        return FairnessLimits(
            max_ratio=self.fairness_max_ratio,
            min_ratio=self.fairness_min_ratio,
            confidence=self.fairness_confidence,
            min_group_customers=self.fairness_min_group_customers,
            gate_segments=self.fairness_gate_segments,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> PromotionPolicy:
        """The policy with every field the settings carry (`promotion_<field>`, and `fairness_<...>` as
        they are named); the rest at defaults."""
        given = {
            f.name: getattr(settings, _setting_name(f.name))
            for f in fields(cls)
            if hasattr(settings, _setting_name(f.name))
        }
        return cls(**given)


def _setting_name(field_name: str) -> str:
    return field_name if field_name.startswith(FAIRNESS_PREFIX) else SETTINGS_PREFIX + field_name
