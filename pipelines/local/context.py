"""What a step runner gets: its resolved arguments, its folder, the ports, and the execution's identity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdp.catalog.port import QueryFiles
from cdp.objectstore.port import ObjectStore
from pipelines.local.container import run_logged
from pipelines.local.usage import ProcessUsage


@dataclass
class StepContext:
    name: str
    arguments: dict[str, Any]  # resolved: no expressions left
    folder: Path  # this step's scratch folder in the run folder
    log: Path
    store: ObjectStore
    # (DuckDB SQL, destination s3:// prefix) -> the result written there as Parquet by the catalog's engine
    query_to_files: Callable[[str, str], QueryFiles]
    python: str
    pipeline_name: str
    execution_id: str
    memory_advice: str = "give the step less data or free memory on this machine"
    preexec_fn: Callable[[], None] | None = None  # e.g. an address-space cap on the script
    usages: list[ProcessUsage] = field(default_factory=list)  # the step's script runs, measured

    def run_script(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        """Run one of the step's scripts into the step's log, measured (see `container.run_logged`)."""
        run_logged(
            command,
            env,
            cwd,
            self.log,
            self.where,
            usages=self.usages,
            memory_advice=self.memory_advice,
            preexec_fn=self.preexec_fn,
        )

    @property
    def job_name(self) -> str:
        return f"pipelines-{self.execution_id}-{self.name}"[:63]

    @property
    def where(self) -> str:
        return f"step {self.name!r}"


@dataclass
class PreparedStep:
    """A job step whose inputs are in place: `digest` identifies them for the cache, `run` does the work,
    `input_digests` hashes each input (or channel) apart, the step's code under `code`."""

    digest: str
    run: Callable[[], dict[str, Any]]
    input_digests: dict[str, str] = field(default_factory=dict)
