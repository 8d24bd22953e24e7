"""The merchant category codes the generator uses, grouped into spending groups.

Every code is a real MCC (checked against the `iso18245` database, which also gives its description).
Groups drive persona spending mixes and amount levels; `high_risk` codes are what card thieves buy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# group -> (median amount in dollars, log-normal sigma, codes most used first)
_GROUPS: dict[str, tuple[float, float, str]] = {
    "grocery": (26.0, 0.75, "5411 5499 5300 5422 5462 5451 5441 5921"),
    "dining": (13.0, 0.70, "5812 5814 5813 5811"),
    "fuel_transport": (22.0, 0.60, "5541 4121 5542 4784 4111 4131 7523 4112 4789"),
    "retail": (
        31.0,
        0.85,
        "5311 5310 5651 5912 5719 5621 5661 5942 5211 5200 5251 5712 5655 5691 5699 5945 5947 5970 5977 "
        "5995 5999 5192 5193 5932 5937 5940 5261",
    ),
    "high_risk": (75.0, 0.95, "4829 5732 5816 5045 5094 5944 7995 6051 5734 5733 5815 5817 5818"),
    "travel": (
        100.0,
        0.80,
        "4511 7011 4722 3001 3640 3596 3504 3509 3684 3722 3730 3771 3775 3780 3005 3006 3007 3008 3009 "
        "3058 3066 3075 3132 3144 3174 3256 3260 3359 3387 3389 3390 3393 3395 3405 7512 4411",
    ),
    "health": (52.0, 0.80, "8011 8021 8062 8099 8041 8043 8049"),
    "services": (
        55.0,
        0.80,
        "4900 4814 4899 7538 7349 7210 7230 5533 7276 7393 6300 8111 7531 7542 7549 8931 9402 1711",
    ),
    "entertainment": (15.0, 0.70, "7832 5735 7922 7996 7841 7801 7802 7941"),
}

GROUP_NAMES: tuple[str, ...] = tuple(_GROUPS)
# Rank-weight exponent inside a group: the first codes of a group are the common ones.
_WITHIN_GROUP_DECAY = 0.9


@dataclass(frozen=True)
class MccCatalogue:
    """Parallel arrays over every code used."""

    codes: np.ndarray  # int16
    group: np.ndarray  # int8, index into GROUP_NAMES
    within_group_weight: np.ndarray  # float64, sums to 1 within each group
    descriptions: tuple[str, ...]
    group_median: np.ndarray  # float64 dollars, per group
    group_sigma: np.ndarray  # float64, per group

    def group_index(self, name: str) -> int:
        return GROUP_NAMES.index(name)

    def code_weights(self, group_weights: np.ndarray) -> np.ndarray:
        """Probability of each code given a spending mix over groups (sums to 1)."""
        w = group_weights[self.group] * self.within_group_weight
        return w / w.sum()

    def expected_amount(self, code_weights: np.ndarray, log_scale: float) -> float:
        """E[amount in dollars] of one purchase for P(code) and a customer's log amount scale."""
        means = self.group_median * np.exp(log_scale + self.group_sigma**2 / 2)
        return float((code_weights / code_weights.sum() * means[self.group]).sum())


def _description(code: str) -> str:
    import iso18245

    mcc = iso18245.get_mcc(code)  # raises for a code that is not a real MCC
    return mcc.iso_description or mcc.visa_description or mcc.mastercard_description or mcc.range.description


@lru_cache(maxsize=1)
def catalogue() -> MccCatalogue:
    """The process-wide MCC catalogue."""
    codes, groups, weights, descriptions = [], [], [], []
    for g, (_, _, text) in enumerate(_GROUPS.values()):
        members = text.split()
        w = (np.arange(1, len(members) + 1, dtype=float)) ** -_WITHIN_GROUP_DECAY
        for code, weight in zip(members, w / w.sum(), strict=True):
            codes.append(int(code))
            groups.append(g)
            weights.append(weight)
            descriptions.append(_description(code))
    return MccCatalogue(
        codes=np.array(codes, dtype=np.int16),
        group=np.array(groups, dtype=np.int8),
        within_group_weight=np.array(weights),
        descriptions=tuple(descriptions),
        group_median=np.array([v[0] for v in _GROUPS.values()]),
        group_sigma=np.array([v[1] for v in _GROUPS.values()]),
    )
