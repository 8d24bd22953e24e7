"""What a step runner gets: its resolved arguments, its folder, the ports, and the execution's identity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from cdp.objectstore.port import ObjectStore


@dataclass
class StepContext:
    name: str
    arguments: dict[str, Any]  # resolved: no expressions left
    folder: Path  # this step's scratch folder in the run folder
    log: Path
    store: ObjectStore
    query: Callable[[str], pa.Table]  # Athena SQL in, result table out (DuckDB locally)
    python: str
    pipeline_name: str
    execution_id: str

    @property
    def job_name(self) -> str:
        return f"pipelines-{self.execution_id}-{self.name}"[:63]

    @property
    def where(self) -> str:
        return f"step {self.name!r}"


@dataclass
class PreparedStep:
    """A job step whose inputs are in place: `digest` identifies them for the cache, `run` does the work."""

    digest: str
    run: Callable[[], dict[str, Any]]
