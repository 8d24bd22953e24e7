"""`Platform.models`: the registry's versions as a table, and a version loaded as serving loads it."""

from __future__ import annotations

from typing import Any

import pandas as pd

from cdp.registry.port import CHAMPION, ModelRegistry, ModelVersion, ModelVersionNotFoundError
from inference.loaded import LoadedModel, load_version


class ModelCatalog:
    """Registered models: `list()` and `load(name, version=None, alias="champion")`."""

    def __init__(self, registry: ModelRegistry, object_store: Any) -> None:
        self._registry = registry
        self._object_store = object_store

    def list(self, name: str | None = None) -> pd.DataFrame:
        """One row per registered version (of `name`, or of every model): status, champion, metrics."""
        rows = [
            {
                "model": v.model_name,
                "version": v.version,
                "status": v.status,
                "champion": v.is_champion,
                "created": v.created_at,
                "registered_by": v.registered_by,
                **{f"metric.{k}": val for k, val in sorted(v.metrics.items())},
            }
            for v in self._registry.list(name)
        ]
        return pd.DataFrame(rows)

    def get(self, name: str, version: int | None = None, alias: str = CHAMPION) -> ModelVersion:
        """The registered version `version`, or the one the alias (`champion`) points at."""
        if version is not None:
            return self._registry.get(name, int(version))
        if alias != CHAMPION:
            raise ModelVersionNotFoundError(f"unknown alias {alias!r}: the registry keeps {CHAMPION!r} only")
        chosen = self._registry.champion(name)
        if chosen is None:
            raise ModelVersionNotFoundError(f"model {name!r} has no champion")
        return chosen

    def load(self, name: str, version: int | None = None, alias: str = CHAMPION) -> LoadedModel:
        """The version loaded exactly as serving loads it (its scoring model, feature spec and metrics)."""
        return load_version(self.get(name, version, alias), self._object_store)
