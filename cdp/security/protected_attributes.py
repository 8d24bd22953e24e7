"""Protected characteristics of a customer, which no marketing model may take as an input.

Gender and age (and what they are derived from: birth year, its band) describe who a customer is, not
how they bank. The lake keeps them banded in the `customers` table, so the fairness measurement can
group outcomes by them; the feature specs (`features/model_inputs.py`) refuse them as model inputs and
the promotion gate refuses a candidate that has one.

Yearly income, FICO score and the number of cards held are not protected characteristics (a lender may
use them), but they correlate with age and gender: model cards name them as possible proxies.
"""

from __future__ import annotations

from collections.abc import Iterable

PROTECTED_ATTRIBUTES: frozenset[str] = frozenset(
    {"gender", "age_band_start", "birth_year", "birth_year_band", "birth_month", "current_age", "age"}
)
SENSITIVE_NOT_PROTECTED: frozenset[str] = frozenset({"yearly_income", "fico_score", "num_credit_cards"})
_ONE_HOT_PREFIXES = ("gender_", "birth_year_")


def protected_inputs(features: Iterable[str]) -> list[str]:
    """The protected attributes among a model's feature names (one-hot names like `gender_Female` too)."""
    return sorted({f for f in features if f in PROTECTED_ATTRIBUTES or f.startswith(_ONE_HOT_PREFIXES)})
