"""The embedded batch transform: the version scored in this process by a scorer the caller injects."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cdp.transform.port import TransformOutput

if TYPE_CHECKING:
    import pyarrow as pa

    from cdp.registry.port import ModelVersion

LocalScorer = Callable[["ModelVersion", "pa.Table", "float | None"], TransformOutput]


class InProcessTransform:
    """`BatchTransform` over a scorer in this process."""

    def __init__(self, scorer: LocalScorer) -> None:
        self.scorer = scorer

    def transform(
        self, version: ModelVersion, feature_rows: pa.Table, reasons_from: float | None
    ) -> TransformOutput:
        output = self.scorer(version, feature_rows, reasons_from)
        return output.checked(feature_rows.num_rows, "the in-process transform")
