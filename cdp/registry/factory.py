"""Build the model registry the settings ask for (`local` -> MLflow, `aws` -> SageMaker)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdp.backends import Backends
    from cdp.registry.port import ModelRegistry


def model_registry(backends: Backends) -> ModelRegistry:
    """The registry for `backends.settings.backend`, auditing to `backends.audit`.

    The local registry reads `s3://` model prefixes through `backends.object_store`; the AWS registry
    writes its artifacts through it.
    """
    if backends.aws:
        from cdp.registry.sagemaker_registry import SageMakerModelRegistry

        return SageMakerModelRegistry.from_settings(
            backends.settings, audit=backends.audit, object_store=backends.object_store
        )
    from cdp.registry.mlflow_registry import MlflowModelRegistry

    return MlflowModelRegistry.from_settings(
        backends.settings, audit=backends.audit, object_store=backends.object_store
    )
