"""`run-pipeline --role ARN` against moto: the stored pipeline is `get-pipeline-definition`'s, the execution
carries the `--parameter` values, a second run updates the pipeline, a bad parameter is one line.

Two builds of a definition differ only where the SDK uploads the training code: under
`<base>-train-<build timestamp>/input/...`. The comparison normalises that timestamp (as the goldens do) and
checks that the stored definition's upload locations hold the code the run uploaded.
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from pipelines.cli import get_pipeline_definition_main, run_pipeline_main
from pipelines.models import spec_of
from pipelines.normalise import normalise_definition
from tests.pipeline_support import BUCKET, REGION, ROLE, SCRIPTS

OTHER_ROLE = "arn:aws:iam::123456789012:role/cdp-sagemaker-execution-2"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")  # moto has no IAM policy simulator


def _args(model: str, role: str = ROLE) -> list[str]:
    return [
        "--pipeline", model, "--role", role, "--bucket", BUCKET, "--region", REGION,
        "--scripts-dir", str(SCRIPTS / model),
    ]  # fmt: skip


def _printed_definition(model: str, capsys, role: str = ROLE) -> dict:
    capsys.readouterr()
    assert get_pipeline_definition_main(_args(model, role)) == 0
    return json.loads(capsys.readouterr().out)


def _assert_same_definition(stored: str, printed: dict) -> None:
    definition = json.loads(stored)
    assert normalise_definition(definition) == normalise_definition(printed)
    s3 = boto3.client("s3", region_name=REGION)
    train = next(s for s in definition["Steps"] if s["Name"] == "Train")["Arguments"]
    for channel in train["InputDataConfig"]:
        uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
        if isinstance(uri, str) and "/input/" in uri:  # the code and drivers the run uploaded
            bucket, _, prefix = uri.removeprefix("s3://").partition("/")
            assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["KeyCount"] > 0, uri


def _lake() -> None:
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )


@pytest.mark.parametrize("model", ["fraud", "clv", "segmentation"])
def test_run_pipeline_upserts_the_printed_definition_and_starts_it(aws, capsys, model):
    expected = _printed_definition(model, capsys)  # built offline, before the account below exists
    gate = spec_of(model).gates[0].parameter
    with mock_aws():
        _lake()
        code = run_pipeline_main(
            [
                *_args(model),
                *("--parameter", f"{gate}=0.42", "--parameter", "TrainingInstanceType=ml.c5.xlarge"),
                *("--parameter", "TrainingInstanceCount=3", "--parameter", "ProcessingInstanceCount=2"),
            ]
        )
        out = capsys.readouterr().out
        assert code == 0
        sm = boto3.client("sagemaker", region_name=REGION)
        name = spec_of(model).pipeline_name
        stored = sm.describe_pipeline(PipelineName=name)
        assert stored["RoleArn"] == ROLE
        _assert_same_definition(stored["PipelineDefinition"], expected)

        executions = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]
        assert len(executions) == 1
        arn = executions[0]["PipelineExecutionArn"]
        assert f"started {arn}" in out
        passed = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
        assert {p["Name"]: p["Value"] for p in passed} == {
            gate: "0.42",
            "TrainingInstanceType": "ml.c5.xlarge",
            "TrainingInstanceCount": "3",
            "ProcessingInstanceCount": "2",
        }


def test_a_second_run_updates_the_pipeline(aws, capsys):
    expected = _printed_definition("segmentation", capsys, role=OTHER_ROLE)
    with mock_aws():
        _lake()
        assert run_pipeline_main(_args("segmentation")) == 0
        assert run_pipeline_main(_args("segmentation", role=OTHER_ROLE)) == 0  # create would refuse the name
        sm = boto3.client("sagemaker", region_name=REGION)
        pipelines = [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]
        assert pipelines == ["cdp-segmentation"]
        stored = sm.describe_pipeline(PipelineName="cdp-segmentation")
        assert stored["RoleArn"] == OTHER_ROLE
        _assert_same_definition(stored["PipelineDefinition"], expected)
        runs = sm.list_pipeline_executions(PipelineName="cdp-segmentation")["PipelineExecutionSummaries"]
        assert len(runs) == 2


@pytest.mark.parametrize(
    ("parameter", "named"),
    [
        ("MinSilhoutte=0.3", "'MinSilhoutte'"),
        ("MinSilhouette=high", "'MinSilhouette' is a Float"),
        ("TrainingInstanceCount=two", "'TrainingInstanceCount' is an Integer"),
        ("NClusters=many", "'NClusters' is an Integer"),
    ],
)
def test_a_bad_parameter_is_one_line_and_nothing_is_created(aws, capsys, parameter, named):
    with mock_aws():
        _lake()
        code = run_pipeline_main([*_args("segmentation"), "--parameter", parameter])
        captured = capsys.readouterr()
        assert code == 2
        assert captured.err.count("\n") == 1 and named in captured.err
        assert "Traceback" not in captured.err + captured.out
        sm = boto3.client("sagemaker", region_name=REGION)
        assert sm.list_pipelines()["PipelineSummaries"] == []


def test_an_aws_error_is_one_line(aws, capsys, monkeypatch):
    from botocore.exceptions import ClientError

    import pipelines.sagemaker_run

    def refused(*args, **kwargs):
        error = {"Code": "AccessDeniedException", "Message": "not authorized to perform:\nCreatePipeline"}
        raise ClientError({"Error": error}, "CreatePipeline")

    monkeypatch.setattr(pipelines.sagemaker_run, "upsert_and_start", refused)
    code = run_pipeline_main(_args("segmentation"))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("run-pipeline: ") and err.count("\n") == 1 and "CreatePipeline" in err
