"""Which view features each model may take as inputs; never a protected attribute.

Protected attributes (`cdp.security.protected_attributes`: gender, age) describe who a customer is, not
how they bank: the marketing models (CLV, segmentation) feed campaign selection, so they never see them.
The customer view still computes them (analysts need them), but a model's declared inputs are checked
against `PROTECTED_ATTRIBUTES` at import and the CLV and segmentation training tables carry only the
declared inputs, so a training script cannot pick a protected column up by accident.

Yearly income, FICO score and the number of cards held are not protected attributes (they are financial
facts a lender may use), but they correlate with age and gender: the model cards say so, and the
fairness gate measures outcomes by group whatever the inputs are.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.security.protected_attributes import PROTECTED_ATTRIBUTES, SENSITIVE_NOT_PROTECTED
from features.asof_spec import AsOfFeatureView
from features.customer import CUSTOMER_VIEW

__all__ = [
    "CLV_INPUTS",
    "MODEL_INPUTS",
    "PROTECTED_ATTRIBUTES",
    "SEGMENTATION_INPUTS",
    "ModelInputs",
    "ProtectedInputError",
    "non_protected",
]


class ProtectedInputError(ValueError):
    """A model's declared inputs include a protected attribute (or a feature its view lacks)."""


@dataclass(frozen=True)
class ModelInputs:
    """The features of `view` a model may be trained on (in the view's order)."""

    model: str
    view: AsOfFeatureView
    inputs: tuple[str, ...]

    def check(self) -> None:
        """Refuse protected attributes and features the view does not define."""
        protected = sorted(set(self.inputs) & PROTECTED_ATTRIBUTES)
        if protected:
            raise ProtectedInputError(f"model {self.model}: protected attributes as inputs: {protected}")
        unknown = sorted(set(self.inputs) - set(self.view.feature_names))
        if unknown:
            raise ProtectedInputError(f"model {self.model}: inputs not in view {self.view.name}: {unknown}")

    @property
    def excluded(self) -> tuple[str, ...]:
        """The view's features left out of the inputs (the protected ones among them)."""
        return tuple(f for f in self.view.feature_names if f not in self.inputs)

    @property
    def sensitive(self) -> tuple[str, ...]:
        """Inputs that are proxies of a protected attribute without being one."""
        return tuple(f for f in self.inputs if f in SENSITIVE_NOT_PROTECTED)


def non_protected(view: AsOfFeatureView) -> tuple[str, ...]:
    """Every feature of the view but the protected attributes, in the view's order."""
    return tuple(f for f in view.feature_names if f not in PROTECTED_ATTRIBUTES)


CLV_INPUTS = ModelInputs("clv", CUSTOMER_VIEW, non_protected(CUSTOMER_VIEW))
SEGMENTATION_INPUTS = ModelInputs("segmentation", CUSTOMER_VIEW, non_protected(CUSTOMER_VIEW))
MODEL_INPUTS: dict[str, ModelInputs] = {m.model: m for m in (CLV_INPUTS, SEGMENTATION_INPUTS)}

for _declared in MODEL_INPUTS.values():
    _declared.check()
