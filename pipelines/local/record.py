"""The run record: status, timings, cache hits, logs and outputs of every step of one execution."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipelines.local.usage import gigabytes

StepStatus = Literal["Succeeded", "Failed", "NotExecuted"]
RunStatus = Literal["Executing", "Succeeded", "Failed"]


@dataclass
class StepRecord:
    name: str
    type: str
    status: StepStatus = "NotExecuted"
    started_at: str | None = None
    ended_at: str | None = None
    duration_seconds: float | None = None
    cache_hit: bool = False
    log: str | None = None
    failure_reason: str | None = None
    outcome: str | None = None  # Condition steps: "if" or "else"
    input_digest: str | None = None  # Processing/Training: sha256 of arguments + input contents
    peak_memory_bytes: int | None = None  # Processing/Training: peak RSS of the script's process tree
    cpu_seconds: float | None = None  # Processing/Training: the script's user + system CPU time
    properties: dict[str, Any] = field(default_factory=dict)
    # a cache-enabled job step that ran: why no cached entry was taken (code, input, parameter changed...)
    cache_miss_reason: str | None = None
    reused_from: str | None = None  # a run from a named step: the execution whose outputs this step reuses

    def summary(self) -> str:
        """One line for a finished step: `Train: Succeeded (41.2 s, CPU 80.5 s, peak 2.3 GB[, cached])`.
        Wall seconds cover the whole step (its input preparation included); CPU seconds and the peak
        memory are its script's (a job step's only)."""
        if self.reused_from is not None:
            return f"{self.name}: {self.status} (reused from run {self.reused_from})"
        figures = [f"{self.duration_seconds or 0:.1f} s"]
        if self.cpu_seconds is not None:
            figures.append(f"CPU {self.cpu_seconds:.1f} s")
        if self.peak_memory_bytes is not None:
            figures.append(f"peak {gigabytes(self.peak_memory_bytes)}")
        if self.cache_hit:
            figures.append("cached")
        return f"{self.name}: {self.status} ({', '.join(figures)})"


@dataclass
class RunRecord:
    pipeline_name: str
    execution_id: str
    definition_sha256: str
    parameters: dict[str, Any]
    status: RunStatus = "Executing"
    started_at: str | None = None
    ended_at: str | None = None
    failure_reason: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    from_step: str | None = None  # rerun from this step, the steps upstream reused from `source_execution_id`
    source_execution_id: str | None = None

    def step(self, name: str) -> StepRecord:
        for record in self.steps:
            if record.name == name:
                return record
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        temp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        data = json.loads(Path(path).read_text())
        data["steps"] = [StepRecord(**s) for s in data.get("steps", [])]
        return cls(**data)
