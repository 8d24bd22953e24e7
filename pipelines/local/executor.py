"""Runs a SageMaker pipeline definition JSON locally, step by step in dependency order.

Processing and Training steps run their scripts in subprocesses with the container contract mapped onto
the step's folder; S3 URIs go through the object-store port; Athena inputs run on the catalog, whose
engine writes the result as Parquet files (`Catalog.query_to_files`: never a table in this process);
Condition steps evaluate their conditions; RegisterModel steps call the injected registrar; Fail steps
fail the run with their message. Job steps with `CacheConfig.Enabled` reuse an earlier run's outputs when
their arguments and input contents hash the same; when one runs instead, `progress` gets one line saying
why (which code, input, parameter or part of the definition changed against the step's latest cached
entry: `pipelines.local.fingerprint`). `run(..., from_step=name)` reruns from a named step, reusing the
outputs of the steps upstream of it from the latest run that has them (`pipelines.local.rerun`). Every
run leaves `run.json` (status, timings, peak memory and CPU seconds of each job step's script, logs and
outputs per step) in `<work_dir>/runs/<execution id>/`; `progress` gets one line per finished step.

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
from pipelines.local.fingerprint import explain_miss, step_fingerprint
from pipelines.local.graph import StepNode, parse_steps, run_order
from pipelines.local.memory_advice import memory_settings, out_of_memory_advice
from pipelines.local.processing import check_outputs_exist, prepare_processing, processing_outputs
from pipelines.local.record import RunRecord, StepRecord
from pipelines.local.register import ModelRegistrar, register_model
from pipelines.local.rerun import check_step_name, find_source_run, reuse, reused_steps
from pipelines.local.training import prepare_training
from pipelines.local.usage import memory_limit
from pipelines.parameters import ParameterError, resolve_overrides

__all__ = ["LocalPipelineExecutor", "ModelRegistrar"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def resolve_parameters(definition: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults of the definition's parameters, with overrides converted to their types: an unknown name
    or a value that does not fit is a `DefinitionError` of one line (`pipelines.parameters`)."""
    try:
        return resolve_overrides(definition, overrides)
    except ParameterError as error:
        raise DefinitionError(str(error)) from None


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
        from_step: str | None = None,
    ) -> RunRecord:
        """Run the pipeline; returns (and saves) the run record. Invalid definitions raise before any step.

        `from_step`: rerun from that step; the steps upstream of it are taken from the latest earlier run
        that has them (`pipelines.local.rerun`). An unknown step name, or no such run, raises before any
        step (`DefinitionError`, `NoSourceRunError`)."""
        text = definition if isinstance(definition, str) else json.dumps(definition, sort_keys=True)
        document = json.loads(text) if isinstance(definition, str) else dict(definition)
        nodes = parse_steps(document)
        order = run_order(nodes)
        values = resolve_parameters(document, parameters)
        reused: list[str] = []
        source: RunRecord | None = None
        if from_step is not None:
            check_step_name(nodes, from_step, pipeline_name)
            reused = reused_steps(nodes, order, from_step)
            if reused:
                source = find_source_run(
                    self.work_dir / "runs",
                    pipeline_name,
                    reused,
                    lambda step: self._outputs_exist(nodes[step.name], step.properties),
                )
        execution_id = execution_id or secrets.token_hex(6)
        run_dir = self.run_dir(execution_id)
        record = RunRecord(
            pipeline_name=pipeline_name,
            execution_id=execution_id,
            definition_sha256=hashlib.sha256(text.encode()).hexdigest(),
            parameters=values,
            started_at=_now(),
            steps=[StepRecord(name=n, type=nodes[n].type) for n in order],
            from_step=from_step,
            source_execution_id=source.execution_id if source is not None else None,
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
            if source is not None and name in reused:
                reuse(step, source.step(name), source.execution_id)
                resolver.step_properties[name] = step.properties
                record.save(run_dir / "run.json")
                self._report(step)
                continue
            if not self._should_run(node, record, outcomes):
                continue
            step.started_at = _now()
            started = time.perf_counter()
            try:
                self._run_step(
                    node, step, resolver, run_dir, record, outcomes, nodes, forced=name == from_step
                )
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
        *,
        forced: bool = False,
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
            self._run_job(node, step, ctx, resolver, record, forced=forced)
        finally:
            if ctx.usages:
                step.peak_memory_bytes = max(u.peak_rss_bytes for u in ctx.usages)
                step.cpu_seconds = round(sum(u.cpu_seconds for u in ctx.usages), 3)

    def _run_job(
        self,
        node: StepNode,
        step: StepRecord,
        ctx: StepContext,
        resolver: Resolver,
        record: RunRecord,
        *,
        forced: bool = False,
    ) -> None:
        prepared: PreparedStep = (
            prepare_processing(ctx) if node.type == "Processing" else prepare_training(ctx)
        )
        step.input_digest = prepared.digest
        cache_config = node.body.get("CacheConfig") or {}
        if not cache_config.get("Enabled"):
            step.properties = prepared.run()
            resolver.step_properties[node.name] = step.properties
            return
        fingerprint = step_fingerprint(
            node.arguments, ctx.arguments, record.parameters, prepared.input_digests
        )
        cached, miss = self._cache_lookup(node, record.pipeline_name, prepared.digest, fingerprint, forced)
        if cached is not None:
            step.properties, step.cache_hit = cached["properties"], True
        else:
            step.cache_miss_reason = miss
            if self.progress is not None:
                self.progress(f"{node.name}: not from the cache: {miss}")
            step.properties = prepared.run()
            self.cache.put(
                record.pipeline_name,
                node.name,
                prepared.digest,
                step.properties,
                record.execution_id,
                components=fingerprint,
            )
        resolver.step_properties[node.name] = step.properties

    def _cache_lookup(
        self, node: StepNode, pipeline: str, digest: str, fingerprint: dict[str, str], forced: bool
    ) -> tuple[dict[str, Any] | None, str]:
        """(the cached entry to take, None) or (None, why none is taken: one line)."""
        if forced:
            return None, "rerun from this step as asked"
        if not self.use_cache:
            return None, "the cache is off for this run"
        entry = self.cache.find(pipeline, node.name, digest)
        if entry is None:
            return None, explain_miss(self.cache.latest(pipeline, node.name), fingerprint)
        run = entry.get("execution_id", "?")
        expire_after = (node.body.get("CacheConfig") or {}).get("ExpireAfter")
        if self.cache.expired(entry, expire_after):
            return None, f"the cached entry (run {run}) is older than its expiry ({expire_after})"
        if not self._outputs_exist(node, entry["properties"]):
            return None, f"the outputs of the cached entry (run {run}) are gone"
        return entry, ""

    def _report(self, step: StepRecord) -> None:
        """One progress line per finished step (`StepRecord.summary`)."""
        if self.progress is None or step.status == "NotExecuted":
            return
        self.progress(step.summary())

    def _outputs_exist(self, node: StepNode, properties: dict[str, Any]) -> bool:
        """Whether a job step's outputs (as its properties name them) are still in the object store; other
        steps have none to check."""
        if node.type == "Processing":
            return check_outputs_exist(self.store, processing_outputs(properties))
        if node.type == "Training":
            uri = properties.get("ModelArtifacts", {}).get("S3ModelArtifacts")
            return bool(uri) and self.store.exists(uri)
        return True

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
