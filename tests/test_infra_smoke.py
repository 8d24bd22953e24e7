"""The AWS smoke script's dry run against moto: passes when the stacks' resources exist, names the first
missing one otherwise; the clean-up deletes only what carries the run's tag."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from cdp.aws_resources import AwsResources
from cdp.settings import get_settings
from infra.smoke.__main__ import main
from infra.smoke.checks import stack_resources
from infra.smoke.clients import Clients
from infra.smoke.ledger import Ledger

REGION = "eu-west-1"


@pytest.fixture
def names(monkeypatch) -> AwsResources:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CDP_AWS_REGION", REGION)
    get_settings.cache_clear()
    return AwsResources.from_settings(get_settings())


@pytest.fixture
def account(names):
    """An account where the stacks are deployed."""
    with mock_aws():
        _deploy_stacks(names)
        yield names


def _deploy_stacks(names: AwsResources, skip: str | None = None) -> None:
    """What the CDK stacks create, made directly in moto (names as the stacks give them), but `skip`."""
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=names.lake_bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for resource in stack_resources(names):
        if resource.describe() == skip:
            continue
        if resource.kind == "DynamoDB table":
            dynamodb.create_table(
                TableName=resource.name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        elif resource.kind == "Athena workgroup":
            boto3.client("athena", region_name=REGION).create_work_group(Name=resource.name)
        elif resource.kind == "model package group":
            boto3.client("sagemaker", region_name=REGION).create_model_package_group(
                ModelPackageGroupName=resource.name
            )
        elif resource.kind == "IAM role":
            boto3.client("iam", region_name=REGION).create_role(
                RoleName=resource.name, AssumeRolePolicyDocument="{}"
            )
    boto3.client("kinesis", region_name=REGION).create_stream(
        StreamName=names.stream, StreamModeDetails={"StreamMode": "ON_DEMAND"}
    )


def test_dry_run_passes_when_every_stack_resource_exists(account, capsys):
    assert main(["--dry-run", "--run-id", "abcd1234"]) == 0
    out = capsys.readouterr().out
    assert "dry run: checks passed, nothing created" in out
    assert "ok  Kinesis stream cdp-transactions" in out and "ok  model package group cdp-fraud" in out
    assert "cdp:smoke=abcd1234" in out  # the plan names the tag
    sm = boto3.client("sagemaker", region_name=REGION)
    assert sm.list_pipelines()["PipelineSummaries"] == []  # a dry run creates nothing


@pytest.mark.parametrize(
    "missing",
    [
        "DynamoDB table cdp-audit",
        "model package group cdp-clv",
        "Athena workgroup cdp",
        "IAM role cdp-sagemaker-execution",
    ],
)
def test_dry_run_names_the_missing_resource(names, capsys, missing):
    with mock_aws():
        _deploy_stacks(names, skip=missing)
        assert main(["--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"missing {missing}" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        (lambda n: boto3.client("kinesis", region_name=REGION).delete_stream(StreamName=n.stream),
         "missing Kinesis stream cdp-transactions"),
        (lambda n: boto3.client("s3", region_name=REGION).delete_bucket(Bucket=n.lake_bucket),
         "missing S3 bucket cdp-lake"),
    ],
)  # fmt: skip
def test_dry_run_notices_a_deleted_resource(account, capsys, remove, named):
    remove(account)
    assert main(["--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "Traceback" not in err


def test_clean_up_deletes_only_what_carries_the_run_tag(account, capsys):
    sm = boto3.client("sagemaker", region_name=REGION)
    image = {"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cdp:1"}
    role = "arn:aws:iam::123456789012:role/cdp-sagemaker-execution"
    ledger = Ledger(run_id="abcd1234")
    sm.create_model(ModelName="mine", PrimaryContainer=image, ExecutionRoleArn=role, Tags=ledger.tags())
    sm.create_model(ModelName="theirs", PrimaryContainer=image, ExecutionRoleArn=role,
                    Tags=[{"Key": "cdp:smoke", "Value": "other"}])  # fmt: skip
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=account.lake_bucket, Key="_smoke/abcd1234/x", Body=b"1")
    s3.put_object(Bucket=account.lake_bucket, Key="_smoke/other/x", Body=b"1")
    ledger.add("model", "mine")
    ledger.add("model", "theirs")
    ledger.add("s3-prefix", f"s3://{account.lake_bucket}/_smoke/abcd1234/")
    ledger.add("s3-prefix", f"s3://{account.lake_bucket}/_smoke/")  # not this run's name: kept
    problems = ledger.clean_up(Clients(REGION), lambda line: None)
    assert problems == []
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["theirs"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=account.lake_bucket)["Contents"]]
    assert keys == ["_smoke/other/x"]


def test_the_smoke_pipeline_reads_its_slice_and_leaves_nothing_behind(account, monkeypatch):
    import json

    from infra.smoke import steps

    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")  # moto has no IAM policy simulator
    boto3.client("glue", region_name=REGION).create_database(DatabaseInput={"Name": "cdp"})
    clients, ledger = Clients(REGION), Ledger(run_id="abcd1234")
    table = steps.upload_slice(clients, ledger, account.lake_bucket, rows=300, seed=7)
    role = "arn:aws:iam::123456789012:role/cdp-sagemaker-execution"
    pipeline, _ = steps.start_pipeline(clients, ledger, role=role, bucket=account.lake_bucket, table=table)

    sm = boto3.client("sagemaker", region_name=REGION)
    stored = sm.describe_pipeline(PipelineName=pipeline)
    assert {"Key": "cdp:smoke", "Value": "abcd1234"} in sm.list_tags(ResourceArn=stored["PipelineArn"])[
        "Tags"
    ]
    definition = json.loads(stored["PipelineDefinition"])
    athena = definition["Steps"][0]["Arguments"]["ProcessingInputs"][0]["DatasetDefinition"]
    assert athena["AthenaDatasetDefinition"]["QueryString"] == f"SELECT * FROM {table}"
    assert athena["AthenaDatasetDefinition"]["WorkGroup"] == "cdp"
    register = definition["Steps"][-1]["Arguments"]["IfSteps"][0]["Arguments"]
    assert register["ModelPackageGroupName"] == "cdp-smoke-abcd1234"  # never a platform group
    assert sm.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]

    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=account.lake_bucket, Key="features/keep.parquet", Body=b"1")
    ledger.created.remove(("model-package-group", "cdp-smoke-abcd1234"))  # moto cannot delete groups
    assert ledger.clean_up(clients, lambda line: None) == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=account.lake_bucket)["Contents"]] == [
        "features/keep.parquet"
    ]
    assert sm.list_pipelines()["PipelineSummaries"] == []
    assert boto3.client("glue", region_name=REGION).get_tables(DatabaseName="cdp")["TableList"] == []
