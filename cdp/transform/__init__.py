"""The batch-transform port: a model version scores a table of feature rows offline (in this process here, a
SageMaker transform job on the inference container in AWS; `Backends.batch_transform` picks one)."""

from __future__ import annotations

from cdp.transform.port import BatchTransform, TransformError, TransformOutput

__all__ = ["BatchTransform", "TransformError", "TransformOutput"]
