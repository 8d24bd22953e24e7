"""The writing steps of a real smoke run: a data slice, one pipeline run, registry decisions, an endpoint.

Everything is created under names holding the run id and tagged `cdp:smoke=<run id>` (`Ledger`), so the
clean-up can prove what is its own. The pipeline is a throw-away copy of the segmentation pipeline
(`cdp-smoke-<run id>`, its own model package group) reading the uploaded slice: the platform's pipelines,
groups and champions are never touched.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cdp.aws_resources import ATHENA_WORKGROUP, GLUE_DATABASE
from infra.smoke.clients import Clients
from infra.smoke.ledger import Ledger
from pipelines.models import spec_of
from pipelines.spec import ModelPipelineSpec

SMOKE_MODEL = "segmentation"  # no labels needed, a few hundred rows, k-means on one small instance
SMOKE_INSTANCE = "ml.m5.large"
FEATURES = ("recency_days", "frequency", "monetary", "online_share")


def smoke_spec(run_id: str) -> ModelPipelineSpec:
    """The segmentation spec under the run's own name: pipeline and package group `cdp-smoke-<run id>`."""
    return replace(spec_of(SMOKE_MODEL), model=f"smoke-{run_id}")


def slice_table(run_id: str) -> str:
    return f"smoke_{run_id.replace('-', '_')}_segmentation"


def generate_slice(rows: int, seed: int) -> bytes:
    """A small segmentation feature table (three behaviour clusters, pseudonymous tokens) as Parquet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    centres = np.array([[10, 80, 4000, 0.1], [60, 20, 900, 0.7], [200, 5, 300, 0.3]])
    spread = np.array([5, 8, 500, 0.05])
    x = centres[rng.integers(0, 3, rows)] + rng.normal(0, 1, (rows, 4)) * spread
    columns: dict[str, Any] = {"user_token": [f"smoke-{i:06d}" for i in range(rows)]}
    columns.update({name: x[:, i] for i, name in enumerate(FEATURES)})
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def upload_slice(clients: Clients, ledger: Ledger, bucket: str, rows: int, seed: int) -> str:
    """Upload the slice under `_smoke/<run id>/` and catalog it as a Glue table; returns the table name."""
    prefix = f"_smoke/{ledger.run_id}/"
    ledger.add("s3-prefix", f"s3://{bucket}/{prefix}")
    clients("s3").put_object(
        Bucket=bucket,
        Key=f"{prefix}segmentation/part-0.parquet",
        Body=generate_slice(rows, seed),
        Tagging="&".join(f"{k}={v}" for k, v in ledger.tag.items()),
    )
    table = slice_table(ledger.run_id)
    clients("glue").create_table(
        DatabaseName=GLUE_DATABASE,
        TableInput={
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"classification": "parquet", **ledger.tag},
            "StorageDescriptor": {
                "Columns": [{"Name": "user_token", "Type": "string"}]
                + [{"Name": n, "Type": "double"} for n in FEATURES],
                "Location": f"s3://{bucket}/{prefix}segmentation/",
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                },
            },
        },
    )
    ledger.add("glue-table", f"{GLUE_DATABASE}.{table}")
    return table


def start_pipeline(
    clients: Clients, ledger: Ledger, *, role: str, bucket: str, table: str
) -> tuple[str, str]:
    """Create the run's package group, then upsert and start its pipeline through `run-pipeline`'s code;
    returns (pipeline name, execution ARN)."""
    from pipelines.sagemaker_run import upsert_and_start

    spec = smoke_spec(ledger.run_id)
    clients("sagemaker").create_model_package_group(
        ModelPackageGroupName=spec.model_package_group,
        ModelPackageGroupDescription=f"smoke run {ledger.run_id}",
        Tags=ledger.tags(),
    )
    ledger.add("model-package-group", spec.model_package_group)
    ledger.add("s3-prefix", f"s3://{bucket}/pipelines/{spec.model}/")
    ledger.add("s3-prefix", f"s3://{bucket}/{spec.pipeline_name}")  # the SDK's code uploads

    def builder(session: Any, role: str, bucket: str, **options: Any) -> Any:
        from pipelines.builder import build_pipeline  # imports the SDK: after upsert_and_start set it up

        return build_pipeline(spec, session, role, bucket, **options)

    started = upsert_and_start(
        SMOKE_MODEL,
        role=role,
        bucket=bucket,
        settings=clients.settings,
        region=clients.region,
        parameters={"ProcessingInstanceType": SMOKE_INSTANCE, "TrainingInstanceType": SMOKE_INSTANCE},
        scripts_dir=spec_of(SMOKE_MODEL).default_scripts_dir,
        tags=ledger.tag,
        pipeline_builder=builder,
        feature_query=f"SELECT * FROM {table}",
        athena_workgroup=ATHENA_WORKGROUP,
    )
    ledger.add("pipeline", started.pipeline_name)
    return started.pipeline_name, started.execution_arn


def wait_for_execution(
    clients: Clients,
    execution_arn: str,
    report: Callable[[str], None],
    *,
    timeout_seconds: float,
    poll_seconds: float = 30.0,
) -> str:
    """Poll the execution, reporting each step's status change; returns the final status."""
    sm = clients("sagemaker")
    deadline = time.monotonic() + timeout_seconds
    seen: dict[str, str] = {}
    while True:
        steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=execution_arn, SortOrder="Ascending")
        for step in steps.get("PipelineExecutionSteps", []):
            name, status = step["StepName"], step["StepStatus"]
            if seen.get(name) != status:
                seen[name] = status
                reason = f" ({step['FailureReason']})" if step.get("FailureReason") else ""
                report(f"  {name:<12} {status}{reason}")
        status = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)["PipelineExecutionStatus"]
        if status in ("Succeeded", "Failed", "Stopped"):
            return str(status)
        if time.monotonic() > deadline:
            sm.stop_pipeline_execution(PipelineExecutionArn=execution_arn)
            return "TimedOut"
        time.sleep(poll_seconds)


def package_arn(clients: Clients, group: str, version: int) -> str:
    """The ARN of version `version` of a model package group."""
    sm = clients("sagemaker")
    for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
        for package in page.get("ModelPackageSummaryList", []):
            if int(package.get("ModelPackageVersion", 0)) == version:
                return str(package["ModelPackageArn"])
    raise LookupError(f"model package group {group} has no version {version}")


def deploy_endpoint(clients: Clients, ledger: Ledger, *, package: str, role: str) -> str:
    """Model, endpoint config and endpoint (one small instance) from an approved package, through the
    deploy step CodeBuild runs (`monitoring.deploy`); waits until it is in service and returns its name."""
    from monitoring.deploy import DeployRequest, EndpointDeployer

    sm = clients("sagemaker")
    name = f"cdp-smoke-{ledger.run_id}"
    request = DeployRequest(
        package, role, clients.settings.kms_key_id, SMOKE_INSTANCE, endpoint_name=name,
        extra_tags=tuple((t["Key"], t["Value"]) for t in ledger.tags()),
    )  # fmt: skip
    deployment = EndpointDeployer(sm).deploy(request)
    ledger.add("model", deployment.model_name)
    ledger.add("endpoint-config", deployment.endpoint_config_name)
    ledger.add("endpoint", deployment.endpoint_name)
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 30, "MaxAttempts": 40}
    )
    return name


def invoke_endpoint(clients: Clients, endpoint: str, rows: int, seed: int) -> dict[str, Any]:
    """Score a few generated rows (JSON, the app's body shape) and return the parsed answer."""
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(generate_slice(rows, seed + 1)))
    body = {"instances": table.to_pylist()}
    answer = clients("sagemaker-runtime").invoke_endpoint(
        EndpointName=endpoint,
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps(body),
    )
    return json.loads(answer["Body"].read())
