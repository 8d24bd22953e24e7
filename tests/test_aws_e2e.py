"""The production path in AWS mode, end to end, against moto's server on 127.0.0.1 (in this process):

generate -> `cdp load` (core banking in DynamoDB, keys in KMS) -> `cdp batch` (S3 lake) -> Glue tables
registered -> `cdp stream produce` / `consume` (Kinesis, DynamoDB checkpoints) -> `run-pipeline --pipeline
fraud` on SageMaker (stored definition = `get-pipeline-definition`'s, parameters on the execution) -> the
model package the definition's RegisterModel step registers -> `cdp models list/show/approve` -> `cdp
promote` -> the deploy rule matches the approval event (EventBridge) -> `python -m monitoring.deploy`
(model, endpoint config, endpoint) -> `cdp stream run`: the stream handler in AWS mode scores through the
endpoint and lands the scored rows in the lake.

Where the emulator cannot execute, the test fills the gap with the real artifact, never a made-up result:
- training, processing and evaluation jobs (moto records a pipeline execution but runs no step): the
  fraud pipeline's definition runs on the local executor with the real training scripts, on the fraud
  view's online features of random events; its `model.tar.gz` and `evaluation.json` are put where the
  stored definition's Train and Evaluate steps write them for the started execution, and the package is
  created from the stored RegisterModel step's arguments with those locations resolved;
- inference inside an endpoint (moto answers `InvokeEndpoint` with canned data): a proxy in front of the
  server forwards `InvokeEndpoint` of an InService endpoint to the inference container (`serve`, a
  subprocess) on the model folder unpacked from that `model.tar.gz`, with the environment the deployed
  model gives it; everything else goes to moto;
- Athena SQL (moto runs no query and answers empty results): the promotion gate's holdout query and the
  handler's card-profile lookup get no rows, so `cdp promote` cannot decide (too few holdout rows) and
  the version is approved through `cdp models approve`, the path a person takes; cards are scored without
  their lake profile;
- `TestEventPattern` (not implemented by moto): the deploy rule is installed through the EventBridge
  adapter with an SQS probe target and the approval event is routed through `PutEvents`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from typer.testing import CliRunner

from tests.aws_emulator import ACCOUNT, create_platform_resources, endpoint_proxy, moto_server
from tests.contract.moto_env import REGION, use_fake_aws_credentials

ROOT = Path(__file__).resolve().parent.parent
USERS = 4
ROLE = f"arn:aws:iam::{ACCOUNT}:role/cdp-sagemaker-execution"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/cdp-inference:e2e"
CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"  # moto's caller identity
READY_SECONDS = 60.0


# -- the local executor's real run of the same pipeline (before the server: the offline builds of a
# definition run the SDK inside moto's in-process mock, which resets moto's state) ----------------------
@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> dict[str, Any]:
    """model.tar.gz and evaluation.json of the fraud pipeline run by the local executor, and the
    definition `get-pipeline-definition` prints for the platform's settings."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cdp.catalog.local import DuckDbCatalog
    from cdp.catalog.port import TableInfo
    from cdp.objectstore.local import FolderObjectStore
    from pipelines.definition import build_definition
    from pipelines.local import LocalPipelineExecutor
    from tests.pipeline_support import RecordingRegistry
    from tests.test_inference_container import _feature_table

    root = tmp_path_factory.mktemp("local-run")
    store = FolderObjectStore(root / "lake", fsync=False)
    catalog = DuckDbCatalog(root / "catalog.json", resolve=store.local_path)
    table = pa.Table.from_pandas(_feature_table(), preserve_index=False)
    location = "s3://cdp-lake/features/fraud_training_set/"
    path = store.local_path(location + "part-0.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    catalog.register_table(TableInfo(name="fraud_training_set", location=location, schema=table.schema))
    definition = build_definition(
        "fraud", bucket="cdp-lake", region=REGION, role=ROLE, object_store=store, inference_image=IMAGE
    )
    executor = LocalPipelineExecutor(
        store,
        query_to_files=catalog.query_to_files,
        register=RecordingRegistry().register,
        work_dir=root / "work",
    )
    record = executor.run(definition, pipeline_name="cdp-fraud")
    assert record.step("Train").status == "Succeeded", record.step("Train").failure_reason
    evaluation = record.step("Evaluate").properties["ProcessingOutputConfig"]["Outputs"]
    (report_dir,) = [o["S3Output"]["S3Uri"] for o in evaluation if o["OutputName"] == "evaluation"]
    return {
        "model.tar.gz": store.get_bytes(
            record.step("Train").properties["ModelArtifacts"]["S3ModelArtifacts"]
        ),
        "evaluation.json": store.get_bytes(f"{report_dir.rstrip('/')}/evaluation.json"),
        "printed_definition": _printed_definition(),
    }


def _printed_definition() -> dict[str, Any]:
    """`get-pipeline-definition --pipeline fraud` with the test's settings (its inference image)."""
    import contextlib

    from cdp.settings import get_settings
    from pipelines.cli import get_pipeline_definition_main

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(out):
        env.setenv("CDP_INFERENCE_IMAGE_URI", IMAGE)
        get_settings.cache_clear()
        assert get_pipeline_definition_main(["--pipeline", "fraud", "--role", ROLE]) == 0
    get_settings.cache_clear()
    return json.loads(out.getvalue())


# -- the emulator ---------------------------------------------------------------------------------------
@pytest.fixture
def aws(local_run, tmp_path, monkeypatch) -> Iterator[dict[str, Any]]:
    """moto's server with the platform's resources, the settings of a user in AWS mode (environment)."""
    from cdp.settings import Settings, get_settings

    use_fake_aws_credentials(monkeypatch)
    with moto_server() as url:
        env = {
            "CDP_BACKEND": "aws",
            "CDP_AWS_ENDPOINT_URL": url,
            "CDP_AWS_REGION": REGION,
            "CDP_HOME": str(tmp_path / "home"),
            "CDP_USERS": str(USERS),
            "CDP_WORKERS": "1",
            "CDP_INFERENCE_IMAGE_URI": IMAGE,
            "CDP_IAM_ROLE_MAP": json.dumps({CALLER: ["model-approver"]}),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        monkeypatch.setattr(logging.getLogger("werkzeug"), "level", logging.WARNING)
        settings = Settings()
        names = create_platform_resources(settings)
        yield {"url": url, "settings": settings, "names": names}
        get_settings.cache_clear()


def _client(aws: dict[str, Any], service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=aws["url"])


def _cdp(*args: str) -> str:
    """`cdp ARGS` through the root typer app, as a user runs it; its output (exit 0 asserted)."""
    from app.cli import app

    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output[-2000:]
    return result.output


def _lake_keys(aws: dict[str, Any], prefix: str) -> list[str]:
    s3 = _client(aws, "s3")
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=aws["names"].lake_bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


# -- the chain ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_production_path_holds_together_in_aws_mode(aws, local_run, tmp_path) -> None:
    names = aws["names"]
    _data_plane(aws)
    package_arn, execution_arn = _pipeline_on_sagemaker(aws, local_run)
    _registry_and_approval(aws, package_arn, execution_arn, local_run)
    deployment = _deploy_on_approval(aws, package_arn)
    _stream_handler_on_the_endpoint(aws, local_run, deployment, tmp_path)
    assert names.fraud_endpoint == deployment["endpoint"]


def _data_plane(aws: dict[str, Any]) -> None:
    settings = aws["settings"]
    _cdp("generate", "--start", "2016-01-01")
    assert "core banking:" in _cdp("load")
    dynamodb = _client(aws, "dynamodb")
    customers = dynamodb.scan(TableName=aws["names"].table("customers"), Select="COUNT")["Count"]
    assert customers == USERS
    assert "lake:" in _cdp("batch")
    assert _lake_keys(aws, "transactions/")
    tables = {t["Name"] for t in _client(aws, "glue").get_tables(DatabaseName="cdp")["TableList"]}
    assert {"transactions", "cards", "customers"} <= tables, tables
    assert "stream: sent" in _cdp("stream", "produce")
    shard = _client(aws, "kinesis").list_shards(StreamName=settings.stream_name)["Shards"]
    assert shard
    before = len(_lake_keys(aws, "transactions/"))
    assert "lake sink:" in _cdp("stream", "consume")
    assert len(_lake_keys(aws, "transactions/")) > before
    checkpoints = dynamodb.scan(TableName=aws["names"].table("stream-checkpoints"))["Items"]
    assert checkpoints


def _pipeline_on_sagemaker(aws: dict[str, Any], local_run: dict[str, Any]) -> tuple[str, str]:
    """`run-pipeline` on SageMaker, then the model package its RegisterModel step registers; (package ARN,
    execution ARN)."""
    from pipelines.cli import run_pipeline_main
    from pipelines.normalise import normalise_definition

    overrides = {"MinPrAuc": "0.05", "TrainingInstanceType": "ml.m5.xlarge"}
    args = ["--pipeline", "fraud", "--role", ROLE]
    for name, value in overrides.items():
        args += ["--parameter", f"{name}={value}"]
    assert run_pipeline_main(args) == 0
    sm = _client(aws, "sagemaker")
    stored = sm.describe_pipeline(PipelineName="cdp-fraud")
    assert stored["RoleArn"] == ROLE
    definition = json.loads(stored["PipelineDefinition"])
    assert normalise_definition(definition) == normalise_definition(local_run["printed_definition"])
    # the feature query runs in the platform's workgroup, the only one the execution role may use
    (preprocess,) = [s for s in definition["Steps"] if s["Name"] == "Preprocess"]
    dataset = preprocess["Arguments"]["ProcessingInputs"][0]["DatasetDefinition"]["AthenaDatasetDefinition"]
    assert (dataset["WorkGroup"], dataset["Database"]) == (aws["names"].workgroup, aws["names"].glue_database)
    (execution,) = sm.list_pipeline_executions(PipelineName="cdp-fraud")["PipelineExecutionSummaries"]
    arn = execution["PipelineExecutionArn"]
    passed = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in passed} == overrides
    return _register_as_the_pipeline_would(aws, definition, arn, overrides, local_run), arn


def _register_as_the_pipeline_would(
    aws: dict[str, Any],
    definition: dict[str, Any],
    execution_arn: str,
    parameters: dict[str, str],
    local_run: dict[str, Any],
) -> str:
    """Boundary: moto runs no step. The training job's archive and the evaluation report (the local
    executor's, of the same pipeline) go where the stored definition's steps write them for this
    execution; the package is created from the stored RegisterModel step's arguments, resolved."""
    steps = {s["Name"]: s for s in definition["Steps"]}
    execution_id = execution_arn.rsplit("/", 1)[1]
    train_output = steps["Train"]["Arguments"]["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    job = f"pipelines-{execution_id}-Train-e2e"  # SageMaker names the step's job after the execution
    properties = {"Steps.Train.ModelArtifacts.S3ModelArtifacts": f"{train_output}/{job}/output/model.tar.gz"}
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    values = {**{f"Parameters.{k}": v for k, v in defaults.items()},
              **{f"Parameters.{k}": v for k, v in parameters.items()},
              "Execution.PipelineExecutionId": execution_id}  # fmt: skip
    (evaluation,) = steps["Evaluate"]["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    report_dir = _resolve(evaluation["S3Output"]["S3Uri"], {**values, **properties})
    properties[
        "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"
    ] = report_dir  # fmt: skip
    s3 = _client(aws, "s3")
    for uri, body in ((properties["Steps.Train.ModelArtifacts.S3ModelArtifacts"], local_run["model.tar.gz"]),
                      (f"{report_dir}/evaluation.json", local_run["evaluation.json"])):  # fmt: skip
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    (gate,) = [s for s in definition["Steps"] if s["Type"] == "Condition"]
    (register,) = [s for s in gate["Arguments"]["IfSteps"] if s["Type"] == "RegisterModel"]
    request = _resolve(register["Arguments"], {**values, **properties})
    request.pop("SkipModelValidation", None)  # a registration option of the step, not of the package
    # SageMaker records the execution that registered the package
    request["MetadataProperties"] = {"GeneratedBy": execution_arn}
    return str(_client(aws, "sagemaker").create_model_package(**request)["ModelPackageArn"])


def _resolve(value: Any, known: dict[str, Any]) -> Any:
    """A definition's expression with its `Get` and `Std:Join` evaluated from `known`."""
    if isinstance(value, dict):
        if set(value) == {"Get"}:
            return known[value["Get"]]
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return join["On"].join(str(_resolve(v, known)) for v in join["Values"])
        return {k: _resolve(v, known) for k, v in value.items() if v != {}}
    if isinstance(value, list):
        return [_resolve(v, known) for v in value]
    return value


def _registry_and_approval(aws, package_arn, execution_arn, local_run) -> None:
    """`cdp models list/show` read the pipeline's package; `cdp promote`, then `cdp models approve`."""
    from app.cli import app

    listed = _cdp("models", "list", "cdp-fraud")
    assert "PendingManu" in listed and "pr_auc=" in listed and "problem" not in listed.lower(), listed
    shown = json.loads(_cdp("models", "show", "cdp-fraud", "1"))
    report = json.loads(local_run["evaluation.json"])["metrics"]
    assert shown["metrics"] == pytest.approx({k: v["value"] for k, v in report.items()})
    assert shown["lineage"]["pipeline_run_id"] == execution_arn
    package = _client(aws, "sagemaker").describe_model_package(ModelPackageName=package_arn)
    assert shown["artifacts_uri"] == package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert shown["lineage"]["features"]  # from the archive's features.json

    # boundary: the gate's holdout query runs on Athena, which moto answers with no rows: no decision
    promoted = CliRunner().invoke(app, ["promote", "cdp-fraud"])
    assert promoted.exit_code == 0 and "candidate v1 vs champion none: no-decision" in promoted.output
    assert json.loads(_cdp("models", "show", "cdp-fraud", "1"))["status"] == "PendingManualApproval"
    _cdp("models", "approve", "cdp-fraud", "1", "--as", "moto", "--reason", "end-to-end test")
    approved = json.loads(_cdp("models", "show", "cdp-fraud", "champion"))
    assert (approved["version"], approved["status"]) == (1, "Approved")


def _deploy_on_approval(aws: dict[str, Any], package_arn: str) -> dict[str, Any]:
    """The approval event matches the deploy rule (routed by EventBridge to a probe queue); the deploy step
    runs on the package the event names, as the CodeBuild project's input transformer passes it."""
    from dataclasses import replace

    from cdp.events.eventbridge import EventBridgeBus
    from monitoring.deploy import main as deploy_main
    from monitoring.rules import DEPLOY_ON_APPROVAL, install_rules, loop_rules

    sqs, events = _client(aws, "sqs"), _client(aws, "events")
    queue = sqs.create_queue(QueueName="probe-deploy")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rules = [(rule, [replace(t, action=queue_arn, parameters={}) for t in targets])
             for rule, targets in loop_rules() if rule.name == DEPLOY_ON_APPROVAL]  # fmt: skip
    install_rules(EventBridgeBus(events, aws["names"].event_bus), rules)
    package = _client(aws, "sagemaker").describe_model_package(ModelPackageName=package_arn)
    detail = {k: package[k] for k in ("ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn",
                                      "ModelApprovalStatus")}  # fmt: skip
    assert detail["ModelApprovalStatus"] == "Approved"
    sent = events.put_events(Entries=[{
        "Source": "aws.sagemaker", "DetailType": "SageMaker Model Package State Change",
        "Detail": json.dumps(detail), "Resources": [package_arn], "EventBusName": aws["names"].event_bus,
    }])  # fmt: skip
    assert sent["FailedEntryCount"] == 0
    (message,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    event_package = json.loads(message["Body"])["detail"]["ModelPackageArn"]  # $.detail.ModelPackageArn
    assert event_package == package_arn

    kms_key = aws["names"].kms_alias
    args = ["--model-package-arn", event_package, "--role-arn", ROLE, "--kms-key", kms_key]
    assert deploy_main(args) == 0
    assert deploy_main(args) == 0  # a retried build: nothing changes
    sm = _client(aws, "sagemaker")
    endpoint = sm.describe_endpoint(EndpointName="cdp-fraud")
    assert endpoint["EndpointStatus"] == "InService"
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["KmsKeyId"] == kms_key and len(sm.list_endpoint_configs()["EndpointConfigs"]) == 1
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["PrimaryContainer"]["ModelPackageName"] == package_arn
    return {
        "endpoint": endpoint["EndpointName"],
        "environment": model["PrimaryContainer"]["Environment"],
        "model_data": package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_container(aws: dict[str, Any], deployment: dict[str, Any], folder: Path) -> tuple[str, Any]:
    """Boundary: the endpoint's container, run here as SageMaker runs it: the package's model archive
    unpacked into the model folder, the deployed model's environment, SageMaker's port variable."""
    bucket, _, key = deployment["model_data"].removeprefix("s3://").partition("/")
    archive = _client(aws, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    model_dir = folder / "opt-ml-model"
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(model_dir, filter="data")
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "PYTHONPATH": str(ROOT),
        **deployment["environment"],
        "SM_MODEL_DIR": str(model_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
    }
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "inference.container.serve", "serve"],
        env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_SECONDS
    try:
        while True:
            assert process.poll() is None, (folder / "serve.log").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the container did not answer /ping in time"
            try:
                if httpx.get(f"{url}/ping", timeout=1.0).status_code == 200:
                    return url, process
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    except BaseException:
        process.kill()
        process.wait()
        raise


def _stream_handler_on_the_endpoint(aws, local_run, deployment, tmp_path: Path) -> None:
    """`cdp stream run` in AWS mode: its SageMaker client reaches the proxy, whose InvokeEndpoint the
    container answers; the scored rows land in the lake with the deployed version."""
    import pyarrow.parquet as pq

    from cdp.settings import get_settings

    folder = tmp_path / "container"
    folder.mkdir()
    url, process = _start_container(aws, deployment, folder)
    try:
        with endpoint_proxy(aws["url"], REGION) as proxy, pytest.MonkeyPatch.context() as env:
            proxy.container_url = url
            env.setenv("CDP_AWS_ENDPOINT_URL", proxy.url)
            get_settings.cache_clear()
            assert "stream handler:" in _cdp("stream", "run")
        get_settings.cache_clear()
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert proxy.invocations, "the handler never called the endpoint"
    assert {(i.endpoint, i.content_type, i.status) for i in proxy.invocations} == {
        ("cdp-fraud", "application/json", 200)
    }
    rows = sum(len(json.loads(i.body)["instances"]) for i in proxy.invocations)
    keys = [k for k in _lake_keys(aws, "transactions_scored/") if k.endswith(".parquet")]
    assert keys
    s3 = _client(aws, "s3")
    scored = [pq.read_table(io.BytesIO(s3.get_object(Bucket=aws["names"].lake_bucket, Key=k)["Body"].read()))
              for k in keys]  # fmt: skip
    assert sum(t.num_rows for t in scored) == rows
    assert {v for t in scored for v in t.column("model_version").to_pylist()} == {1}
