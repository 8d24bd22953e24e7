"""Rerunning a pipeline from a named step: the steps upstream of it are taken from an earlier run.

The steps the named one depends on, directly or not, are not run again: their outputs (properties) come
from the latest run of the same pipeline in which every one of them succeeded and whose outputs are
still in the object store. Condition steps upstream are evaluated again (they are cheap and read the
reused outputs, with this run's parameters). Other steps run as usual; the named step itself skips the
cache lookup, since rerunning it is what was asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from pipelines.local.errors import DefinitionError, ExecutorError
from pipelines.local.graph import StepNode
from pipelines.local.record import RunRecord, StepRecord


class NoSourceRunError(ExecutorError):
    """No earlier run of the pipeline has the outputs a run from a named step needs."""


def check_step_name(nodes: Mapping[str, StepNode], name: str, pipeline_name: str) -> None:
    """A one-line error naming the valid steps when `name` is not one of the pipeline's."""
    if name not in nodes:
        raise DefinitionError(f"pipeline {pipeline_name} has no step {name!r}; its steps: {', '.join(nodes)}")


def upstream_of(nodes: Mapping[str, StepNode], name: str) -> set[str]:
    """Every step `name` depends on, directly or through others."""
    seen: set[str] = set()
    pending = list(nodes[name].depends_on)
    while pending:
        step = pending.pop()
        if step not in seen:
            seen.add(step)
            pending.extend(nodes[step].depends_on)
    return seen


def reused_steps(nodes: Mapping[str, StepNode], order: list[str], name: str) -> list[str]:
    """The steps upstream of `name` whose outputs are reused (all but Condition steps), in run order."""
    upstream = upstream_of(nodes, name)
    return [s for s in order if s in upstream and nodes[s].type != "Condition"]


def _earlier_runs(runs_dir: Path, pipeline_name: str) -> list[RunRecord]:
    """The pipeline's recorded runs, newest first (records that cannot be read are left out)."""
    runs = []
    for path in runs_dir.glob("*/run.json") if runs_dir.is_dir() else ():
        try:
            record = RunRecord.load(path)
        except (OSError, ValueError, TypeError):
            continue
        if record.pipeline_name == pipeline_name:
            runs.append(record)
    return sorted(runs, key=lambda r: r.started_at or "", reverse=True)


def find_source_run(
    runs_dir: Path,
    pipeline_name: str,
    steps: list[str],
    outputs_exist: Callable[[StepRecord], bool],
) -> RunRecord:
    """The latest run of `pipeline_name` where every one of `steps` succeeded and its outputs still exist."""
    for run in _earlier_runs(runs_dir, pipeline_name):
        records = {s.name: s for s in run.steps}
        if all(
            step in records and records[step].status == "Succeeded" and outputs_exist(records[step])
            for step in steps
        ):
            return run
    raise NoSourceRunError(
        f"no earlier run of {pipeline_name} in which {', '.join(steps)} succeeded with outputs still "
        "in place: run the whole pipeline first"
    )


def reuse(step: StepRecord, source: StepRecord, execution_id: str) -> None:
    """Make `step` (of the new run) the reused `source` step of run `execution_id`."""
    step.status = "Succeeded"
    step.properties = source.properties
    step.input_digest = source.input_digest
    step.outcome = source.outcome
    step.reused_from = execution_id
    step.duration_seconds = 0.0
