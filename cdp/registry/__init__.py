"""Model registry port: MLflow locally, SageMaker Model Registry in AWS (see `port.py` for the lifecycle)."""

from cdp.registry.port import (
    APPROVED,
    CHAMPION,
    PENDING,
    REJECTED,
    InvalidModelNameError,
    InvalidRegistrationError,
    Lineage,
    ModelRegistry,
    ModelVersion,
    ModelVersionNotFoundError,
    ProbabilityModel,
    RegistryError,
)

__all__ = [
    "APPROVED",
    "CHAMPION",
    "PENDING",
    "REJECTED",
    "InvalidModelNameError",
    "InvalidRegistrationError",
    "Lineage",
    "ModelRegistry",
    "ModelVersion",
    "ModelVersionNotFoundError",
    "ProbabilityModel",
    "RegistryError",
]
