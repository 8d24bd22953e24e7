"""Processing steps: inputs (S3 prefixes, Athena queries on DuckDB) -> python script -> outputs to S3."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import sqlglot

from cdp.objectstore.port import ObjectStore
from pipelines.local.container import ContainerRoot, python_command
from pipelines.local.context import PreparedStep, StepContext
from pipelines.local.errors import StepFailedError, UnsupportedStepError
from pipelines.local.transfer import download_prefix, folder_digest, upload_folder


def athena_to_duckdb(sql: str) -> str:
    """The definition holds Athena (Trino) SQL; DuckDB runs it after transpiling back."""
    return sqlglot.transpile(sql, read="athena", write="duckdb")[0]


def _materialise_input(ctx: StepContext, root: ContainerRoot, item: dict[str, Any]) -> None:
    name = item.get("InputName", "?")
    where = f"{ctx.where} input {name!r}"
    if "S3Input" in item:
        s3 = item["S3Input"]
        if s3.get("S3DataType", "S3Prefix") != "S3Prefix" or s3.get("S3InputMode", "File") != "File":
            raise UnsupportedStepError(f"{where}: only S3Prefix inputs in File mode run locally")
        if s3.get("S3CompressionType", "None") != "None":
            raise UnsupportedStepError(f"{where}: compressed inputs are not supported locally")
        download_prefix(ctx.store, s3["S3Uri"], root.map(s3["LocalPath"], where), where)
        return
    dataset = item.get("DatasetDefinition")
    if dataset and "AthenaDatasetDefinition" in dataset:
        local = root.map(dataset["LocalPath"], where)
        _materialise_athena_input(ctx, dataset["AthenaDatasetDefinition"], local, where)
        return
    raise UnsupportedStepError(f"{where}: only S3 and Athena inputs run locally")


def _materialise_athena_input(ctx: StepContext, athena: dict[str, Any], local: Path, where: str) -> None:
    """The feature query's result, written by the catalog's engine under Athena's trail
    (`<OutputS3Uri>/<execution id>/<step>/`, where Athena leaves a result), then copied file by file
    into the input folder: the rows never pass through this process's memory. Files keep their names,
    with `.parquet` added where the engine gave none (Athena's UNLOAD), as the step's script reads
    `*.parquet`."""
    if athena.get("OutputFormat", "PARQUET") != "PARQUET":
        raise UnsupportedStepError(f"{where}: only PARQUET Athena output is supported locally")
    trail = f"{athena['OutputS3Uri'].rstrip('/')}/{ctx.execution_id}/{ctx.name}/"
    try:
        ctx.query_to_files(athena_to_duckdb(athena["QueryString"]), trail)
    except Exception as error:  # the catalog names the table or column, never row values
        raise StepFailedError(f"{where}: feature query failed: {error}") from error
    local.mkdir(parents=True, exist_ok=True)
    copied = 0
    for info in ctx.store.list(trail):
        name = info.uri[len(trail) :].replace("/", "_")
        ctx.store.get_file(info.uri, local / (name if name.endswith(".parquet") else f"{name}.parquet"))
        copied += 1
    if copied == 0:
        raise StepFailedError(f"{where}: the feature query wrote no files under {trail}")


def _local_path(root: ContainerRoot, item: dict[str, Any], where: str) -> Path:
    """Where an input was materialised in the step's container folder."""
    local = item["S3Input"]["LocalPath"] if "S3Input" in item else item["DatasetDefinition"]["LocalPath"]
    return root.map(local, where)


def _cache_view(arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments without input/output locations (inputs count by content, outputs are results)."""
    view = copy.deepcopy(arguments)
    for item in view.get("ProcessingInputs", []):
        item.get("S3Input", {}).pop("S3Uri", None)
        item.get("DatasetDefinition", {}).get("AthenaDatasetDefinition", {}).pop("OutputS3Uri", None)
    for item in view.get("ProcessingOutputConfig", {}).get("Outputs", []):
        item.get("S3Output", {}).pop("S3Uri", None)
    return view


def prepare_processing(ctx: StepContext) -> PreparedStep:
    args = ctx.arguments
    app = args.get("AppSpecification", {})
    root = ContainerRoot(ctx.folder / "opt_ml")
    shutil.rmtree(root.root, ignore_errors=True)
    root.root.mkdir(parents=True)
    command = python_command(app.get("ContainerEntrypoint") or [], ctx.python)
    input_digests: dict[str, str] = {}
    for item in args.get("ProcessingInputs", []):
        _materialise_input(ctx, root, item)
        input_digests[item.get("InputName", "?")] = folder_digest(_local_path(root, item, ctx.where))
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for item in outputs:
        if "S3Output" not in item:
            raise UnsupportedStepError(
                f"{ctx.where} output {item.get('OutputName')!r}: only S3 outputs run locally"
            )
        root.map(item["S3Output"]["LocalPath"], ctx.where).mkdir(parents=True, exist_ok=True)

    digest = hashlib.sha256(
        json.dumps({"arguments": _cache_view(args), "inputs": input_digests}, sort_keys=True).encode()
    ).hexdigest()

    def run() -> dict[str, Any]:
        argv = [root.map_argument(str(a)) for a in [*command, *(app.get("ContainerArguments") or [])]]
        env = root.environment(args.get("Environment") or {})
        ctx.run_script(argv, env, cwd=root.root)
        for item in outputs:
            local = root.map(item["S3Output"]["LocalPath"], ctx.where)
            upload_folder(ctx.store, local, item["S3Output"]["S3Uri"])
        return {
            **args,
            "ProcessingJobName": ctx.job_name,
            "ProcessingJobStatus": "Completed",
            "ProcessingJobArn": f"arn:aws:sagemaker:local:000000000000:processing-job/{ctx.job_name}",
        }

    return PreparedStep(digest=digest, run=run, input_digests=input_digests)


def processing_outputs(properties: dict[str, Any]) -> list[str]:
    """The S3 URIs of a finished processing step's outputs (checked on cache hits)."""
    return [o["S3Output"]["S3Uri"] for o in properties.get("ProcessingOutputConfig", {}).get("Outputs", [])]


def check_outputs_exist(store: ObjectStore, uris: list[str]) -> bool:
    """Whether every output URI still holds an object or a folder of them."""
    return all(store.exists(u) or any(True for _ in store.list(u.rstrip("/") + "/")) for u in uris)
