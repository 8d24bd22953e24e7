"""The batch-transform port: feature rows (the fraud view's raw features, one row per transaction) in, one
probability per row out, and reason codes for the rows scored at or above a given probability.

Adapters: `cdp.transform.inprocess.InProcessTransform` (a scorer injected by the caller: the model encoding
lives above the data platform) and `cdp.transform.sagemaker.SageMakerTransform` (a SageMaker transform job
running the project's inference container on the version's model archive).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from cdp.registry.port import ModelVersion

Reasons = Sequence[tuple[str, float]]  # (feature, contribution), largest first


@dataclass(frozen=True)
class TransformOutput:
    """Per input row (input order): the probability, and its reason codes (empty when not asked for)."""

    probabilities: np.ndarray  # float64
    reasons: list[Reasons]

    def checked(self, rows: int, source: str) -> TransformOutput:
        """This output if it holds one probability in [0, 1] per row, else `TransformError` naming
        `source`."""
        if len(self.probabilities) != rows or len(self.reasons) != rows:
            raise TransformError(f"{source} did not return one prediction per row")
        if rows and not (float(self.probabilities.min()) >= 0.0 and float(self.probabilities.max()) <= 1.0):
            raise TransformError(f"{source} returned a probability outside [0, 1]")
        return self


class TransformError(RuntimeError):
    """The transform failed or answered with something other than one probability per row (no values)."""


@runtime_checkable
class BatchTransform(Protocol):
    """Scores a whole table of feature rows with one model version."""

    def transform(
        self, version: ModelVersion, feature_rows: pa.Table, reasons_from: float | None
    ) -> TransformOutput:
        """One probability per row; reason codes for the rows whose probability is at least `reasons_from`
        (0.0: every row; None: no row)."""
        ...
