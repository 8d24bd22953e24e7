"""Runs a SageMaker pipeline definition JSON locally, step by step in dependency order.

Processing and Training steps run their scripts in subprocesses with the container contract mapped onto
the step's folder; S3 URIs go through the object-store port; Athena inputs run on the catalog, whose
engine writes the result as Parquet files (`Catalog.query_to_files`: never a table in this process);
Condition steps evaluate their conditions; RegisterModel steps call the injected registrar; Fail steps
fail the run with their message. Job steps with `CacheConfig.Enabled` reuse an earlier run's outputs when
their arguments and input contents hash the same. Every run leaves `run.json` (status, timings, peak
memory and CPU seconds of each job step's script, logs and outputs per step) in
`<work_dir>/runs/<execution id>/`; `progress` gets one line per finished step.

A script killed by the kernel (SIGKILL: the out-of-memory killer) or dying of MemoryError fails its step
with one line: "out of memory (peak X GB): set <the pipeline parameters that shape the step's data>".
`step_memory_limit_bytes` caps each script's address space, so a step too big fails on its own instead of
the kernel choosing what to kill.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdp.catalog.port import QueryFiles
from cdp.objectstore.port import ObjectStore
from pipelines.local.cache import StepCache
from pipelines.local.conditions import all_hold
from pipelines.local.container import default_python
from pipelines.local.context import PreparedStep, StepContext
from pipelines.local.errors import DefinitionError, ExecutorError, StepFailedError
from pipelines.local.expressions import Resolver, walk
from pipelines.local.graph import StepNode, parse_steps, run_order
from pipelines.local.memory_advice import memory_settings, out_of_memory_advice
from pipelines.local.processing import check_outputs_exist, prepare_processing, processing_outputs
from pipelines.local.record import RunRecord, StepRecord
from pipelines.local.register import ModelRegistrar, register_model
from pipelines.local.training import prepare_training
from pipelines.local.usage import memory_limit

__all__ = ["LocalPipelineExecutor", "ModelRegistrar"]

_PARAMETER_TYPES: dict[str, Callable[[Any], Any]] = {
    "String": str,
    "Integer": int,
    "Float": float,
    "Boolean": lambda v: v if isinstance(v, bool) else str(v).lower() == "true",
}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def resolve_parameters(definition: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults of the definition's parameters, with overrides (unknown names are errors)."""
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = set(overrides or {}) - declared.keys()
    if unknown:
        raise DefinitionError(f"unknown pipeline parameter(s): {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, parameter in declared.items():
        convert = _PARAMETER_TYPES.get(parameter.get("Type", "String"), str)
        if overrides and name in overrides:
            try:
                values[name] = convert(overrides[name])
            except (TypeError, ValueError):
                raise DefinitionError(f"parameter {name!r} must be a {parameter.get('Type')}") from None
        elif "DefaultValue" in parameter:
            values[name] = parameter["DefaultValue"]
        else:
            raise DefinitionError(f"parameter {name!r} has no default and no value was given")
    return values


class LocalPipelineExecutor:
    """Executes definition JSON against local ports (see the module docstring)."""

    def __init__(
        self,
        object_store: ObjectStore,
        *,
        query_to_files: Callable[[str, str], QueryFiles],
        register: ModelRegistrar,
        work_dir: Path,
        python: str | None = None,
        use_cache: bool = True,
        progress: Callable[[str], None] | None = None,
        step_memory_limit_bytes: int | None = None,
    ) -> None:
        self.store = object_store
        self.query_to_files = query_to_files
        self.register = register
        self.work_dir = Path(work_dir)
        self.python = python or default_python()
        self.use_cache = use_cache
        self.cache = StepCache(self.work_dir / "cache")
        self.progress = progress
        self.step_memory_limit_bytes = step_memory_limit_bytes

    def run_dir(self, execution_id: str) -> Path:
        return self.work_dir / "runs" / execution_id

    def run(
        self,
        definition: Mapping[str, Any] | str,
        *,
        pipeline_name: str,
        parameters: Mapping[str, Any] | None = None,
        execution_id: str | None = None,
    ) -> RunRecord:
        """Run the pipeline; returns (and saves) the run record. Invalid definitions raise before any step."""
        text = definition if isinstance(definition, str) else json.dumps(definition, sort_keys=True)
        document = json.loads(text) if isinstance(definition, str) else dict(definition)
        nodes = parse_steps(document)
        order = run_order(nodes)
        values = resolve_parameters(document, parameters)
        execution_id = execution_id or secrets.token_hex(6)
        run_dir = self.run_dir(execution_id)
        record = RunRecord(
            pipeline_name=pipeline_name,
            execution_id=execution_id,
            definition_sha256=hashlib.sha256(text.encode()).hexdigest(),
            parameters=values,
            started_at=_now(),
            steps=[StepRecord(name=n, type=nodes[n].type) for n in order],
        )
        arn = f"arn:aws:sagemaker:local:000000000000:pipeline/{pipeline_name}"
        resolver = Resolver(
            values,
            {
                "PipelineName": pipeline_name,
                "PipelineArn": arn,
                "PipelineExecutionId": execution_id,
                "PipelineExecutionArn": f"{arn}/execution/{execution_id}",
                "StartDateTime": record.started_at,
                "CurrentDateTime": record.started_at,
            },
            read_property_file=lambda step, name: self._property_file(nodes, resolver, step, name),
            read_json_uri=lambda uri: json.loads(self.store.get_bytes(uri)),
        )
        outcomes: dict[str, str] = {}
        record.save(run_dir / "run.json")
        for name in order:
            node, step = nodes[name], record.step(name)
            if not self._should_run(node, record, outcomes):
                continue
            step.started_at = _now()
            started = time.perf_counter()
            try:
                self._run_step(node, step, resolver, run_dir, record, outcomes, nodes)
                step.status = "Succeeded"
            except (ExecutorError, OSError) as error:  # OSError: a missing object or file
                step.status, step.failure_reason = "Failed", str(error)
                record.status, record.failure_reason = "Failed", f"step {name!r} failed: {error}"
            finally:
                step.ended_at = _now()
                step.duration_seconds = round(time.perf_counter() - started, 3)
                record.save(run_dir / "run.json")
                self._report(step)
            if record.status == "Failed":
                break
        if record.status != "Failed":
            record.status = "Succeeded"
        record.ended_at = _now()
        record.save(run_dir / "run.json")
        return record

    # -- scheduling --------------------------------------------------------------------------------
    @staticmethod
    def _should_run(node: StepNode, record: RunRecord, outcomes: Mapping[str, str]) -> bool:
        if node.branch is not None and outcomes.get(node.branch[0]) != node.branch[1]:
            return False
        return all(record.step(d).status == "Succeeded" for d in node.depends_on)

    def _run_step(
        self,
        node: StepNode,
        step: StepRecord,
        resolver: Resolver,
        run_dir: Path,
        record: RunRecord,
        outcomes: dict[str, str],
        nodes: Mapping[str, StepNode],
    ) -> None:
        where = f"step {node.name!r}"
        if node.type == "Condition":
            held = all_hold(node.arguments.get("Conditions", []), resolver, where)
            outcomes[node.name] = step.outcome = "if" if held else "else"
            resolver.step_properties[node.name] = {"Outcome": held}
            return
        if node.type == "Fail":
            message = resolver.resolve(node.arguments.get("ErrorMessage", ""))
            raise StepFailedError(f"Fail step reached: {message}")
        arguments = resolver.resolve(node.arguments)
        if node.type == "RegisterModel":
            lineage = {
                "pipeline_name": record.pipeline_name,
                "execution_id": record.execution_id,
                "step": node.name,
                "definition_sha256": record.definition_sha256,
                # The first processing step reads the feature data: its input digest fingerprints it.
                "data_snapshot_hash": next(
                    (s.input_digest for s in record.steps if s.type == "Processing" and s.input_digest), None
                ),
            }
            step.properties = register_model(node.name, arguments, self.store, self.register, lineage)
            resolver.step_properties[node.name] = step.properties
            return
        folder = run_dir / node.name
        ctx = StepContext(
            name=node.name,
            arguments=arguments,
            folder=folder,
            log=folder / f"{node.name}.log",
            store=self.store,
            query_to_files=self.query_to_files,
            python=self.python,
            pipeline_name=record.pipeline_name,
            execution_id=record.execution_id,
            memory_advice=out_of_memory_advice(memory_settings(nodes, node.name)),
            preexec_fn=memory_limit(self.step_memory_limit_bytes) if self.step_memory_limit_bytes else None,
        )
        step.log = str(ctx.log)
        try:
            self._run_job(node, step, ctx, resolver, record)
        finally:
            if ctx.usages:
                step.peak_memory_bytes = max(u.peak_rss_bytes for u in ctx.usages)
                step.cpu_seconds = round(sum(u.cpu_seconds for u in ctx.usages), 3)

    def _run_job(
        self, node: StepNode, step: StepRecord, ctx: StepContext, resolver: Resolver, record: RunRecord
    ) -> None:
        prepared: PreparedStep = (
            prepare_processing(ctx) if node.type == "Processing" else prepare_training(ctx)
        )
        step.input_digest = prepared.digest
        cache_config = node.body.get("CacheConfig") or {}
        cached = None
        if self.use_cache and cache_config.get("Enabled"):
            cached = self.cache.get(
                record.pipeline_name, node.name, prepared.digest, cache_config.get("ExpireAfter")
            )
            if cached is not None and not self._outputs_exist(node, ctx, cached["properties"]):
                cached = None
        if cached is not None:
            step.properties, step.cache_hit = cached["properties"], True
        else:
            step.properties = prepared.run()
            if cache_config.get("Enabled"):
                self.cache.put(
                    record.pipeline_name, node.name, prepared.digest, step.properties, record.execution_id
                )
        resolver.step_properties[node.name] = step.properties

    def _report(self, step: StepRecord) -> None:
        """One progress line per finished step (`StepRecord.summary`)."""
        if self.progress is None or step.status == "NotExecuted":
            return
        self.progress(step.summary())

    @staticmethod
    def _outputs_exist(node: StepNode, ctx: StepContext, properties: dict[str, Any]) -> bool:
        if node.type == "Processing":
            return check_outputs_exist(ctx, processing_outputs(properties))
        return ctx.store.exists(properties["ModelArtifacts"]["S3ModelArtifacts"])

    # -- property files ----------------------------------------------------------------------------
    def _property_file(self, nodes: Mapping[str, StepNode], resolver: Resolver, step: str, name: str) -> Any:
        where = f"property file {step}.{name}"
        if step not in nodes or step not in resolver.step_properties:
            raise DefinitionError(f"{where}: step has not run")
        declared = [p for p in nodes[step].body.get("PropertyFiles", []) if p.get("PropertyFileName") == name]
        if not declared:
            raise DefinitionError(f"{where}: not declared by the step")
        output = walk(
            resolver.step_properties[step],
            ["ProcessingOutputConfig", "Outputs", declared[0]["OutputName"]],
            where,
        )
        uri = f"{output['S3Output']['S3Uri'].rstrip('/')}/{declared[0]['FilePath']}"
        try:
            return json.loads(self.store.get_bytes(uri))
        except (FileNotFoundError, json.JSONDecodeError) as error:
            raise StepFailedError(
                f"{where}: cannot read {declared[0]['FilePath']} ({type(error).__name__})"
            ) from None
