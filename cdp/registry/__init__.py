"""Model registry port: MLflow locally, SageMaker Model Registry in AWS (see `port.py` for the lifecycle)."""

from cdp.registry.port import (
    APPROVED,
    CHALLENGER,
    CHAMPION,
    PENDING,
    REJECTED,
    ChampionEvent,
    InvalidModelNameError,
    InvalidRegistrationError,
    Lineage,
    ModelRegistry,
    ModelVersion,
    ModelVersionNotFoundError,
    NoPreviousChampionError,
    ProbabilityModel,
    RegistryError,
    UnreadableVersionError,
)

__all__ = [
    "APPROVED",
    "CHALLENGER",
    "CHAMPION",
    "PENDING",
    "REJECTED",
    "ChampionEvent",
    "InvalidModelNameError",
    "InvalidRegistrationError",
    "Lineage",
    "ModelRegistry",
    "ModelVersion",
    "ModelVersionNotFoundError",
    "NoPreviousChampionError",
    "ProbabilityModel",
    "RegistryError",
    "UnreadableVersionError",
]
