"""The runtime and governance stacks, both cdk-nag packs and their accepted findings, and cfn-lint.

Each runtime piece has its AWS home: the extraction and transform Lambdas on their event sources, the
public API's routes (equal to the app's OpenAPI document), the Batch jobs on their triggers, the trail,
topics and backups; roles are least privilege and the key is never granted without a condition.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra_synth import PROD, STAGING, as_list, flatten, resources, synthesised


@pytest.fixture(scope="module")
def synth():
    return synthesised()


def _runtime(synth) -> dict[str, Any]:
    return synth["json"]["CdpRuntime"]


def _one(template: dict[str, Any], kind: str, **match: Any) -> tuple[str, dict[str, Any]]:
    found = [
        (k, r) for k, r in resources(template, kind).items()
        if all(r["Properties"].get(name) == value for name, value in match.items())
    ]  # fmt: skip
    assert len(found) == 1, (kind, match, [k for k, _ in found])
    return found[0]


def _policy_statements(template: dict[str, Any], role_logical_prefix: str) -> list[dict[str, Any]]:
    """The statements of the grants policy attached to the role whose logical id starts with the prefix."""
    roles = [k for k in resources(template, "AWS::IAM::Role") if k.startswith(role_logical_prefix)]
    assert len(roles) == 1, (role_logical_prefix, roles)
    statements = []
    for policy in resources(template, "AWS::IAM::ManagedPolicy").values():
        if {"Ref": roles[0]} in policy["Properties"].get("Roles", []):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    assert statements, role_logical_prefix
    return statements


def _exported(synth, value: Any) -> Any:
    """What an `Fn::ImportValue` resolves to (the exporting stack's value); other values as they are."""
    if not (isinstance(value, dict) and "Fn::ImportValue" in value):
        return value
    for template in synth["json"].values():
        for output in template.get("Outputs", {}).values():
            if output.get("Export", {}).get("Name") == value["Fn::ImportValue"]:
                return output["Value"]
    raise AssertionError(f"no export {value}")


def _function(synth, construct) -> tuple[str, dict[str, Any]]:
    stack = synth["stacks"].runtime
    logical_id = stack.get_logical_id(construct.node.default_child)
    return logical_id, _runtime(synth)["Resources"][logical_id]["Properties"]


# -- network -----------------------------------------------------------------------------------------
def test_runtime_network_is_private_with_an_endpoint_per_service_and_flow_logs(synth) -> None:
    from infra.network import GATEWAY_ENDPOINTS, INTERFACE_ENDPOINTS

    template = _runtime(synth)
    for kind in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP"):
        assert not resources(template, kind), kind
    subnets = resources(template, "AWS::EC2::Subnet").values()
    assert len(subnets) == 2 and not any(s["Properties"].get("MapPublicIpOnLaunch") for s in subnets)
    endpoints = resources(template, "AWS::EC2::VPCEndpoint").values()
    services = sorted(flatten(e["Properties"]["ServiceName"]).rsplit(".", 1)[-1] for e in endpoints)
    expected = {"s3", "dynamodb", "kinesis-streams", "kms", "runtime", "api", "sts", "monitoring", "logs",
                "athena", "glue", "events", "sns", "dkr"}  # fmt: skip
    assert set(services) == expected
    assert len(services) == len(GATEWAY_ENDPOINTS) + len(INTERFACE_ENDPOINTS)
    for endpoint in endpoints:
        if endpoint["Properties"].get("VpcEndpointType") == "Interface":
            assert endpoint["Properties"]["PrivateDnsEnabled"] is True
    (flow_log,) = resources(template, "AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["LogDestinationType"] == "s3"
    assert flow_log["Properties"]["TrafficType"] == "ALL"


# -- streaming ---------------------------------------------------------------------------------------
def test_core_banking_transactions_table_streams_new_images(synth) -> None:
    _, table = _one(synth["json"]["CdpDataPlane"], "AWS::DynamoDB::Table", TableName="cdp-transactions")
    assert table["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    streamed = [
        t for t in resources(synth["json"]["CdpDataPlane"], "AWS::DynamoDB::Table").values()
        if "StreamSpecification" in t["Properties"]
    ]  # fmt: skip
    assert len(streamed) == 1  # only core banking's transactions feed the stream


def test_extraction_lambda_reads_the_table_stream_and_puts_protected_records_on_kinesis(synth) -> None:
    from infra.stream_functions import EXTRACT_HANDLER

    streaming = synth["stacks"].runtime.streaming
    logical_id, props = _function(synth, streaming.extract)
    assert props["PackageType"] == "Image"
    assert props["ImageConfig"]["Command"] == [EXTRACT_HANDLER]
    assert props["VpcConfig"]["SubnetIds"]
    env = props["Environment"]["Variables"]
    assert env["CDP_BACKEND"] == "aws" and env["CDP_STREAM_NAME"] == synth["names"].stream
    assert env["CDP_LAKE_BUCKET"] == "cdp-lake-test" and env["CDP_KMS_KEY_ID"] == synth["names"].kms_key_id
    mappings = [
        m["Properties"] for m in resources(_runtime(synth), "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": logical_id}
    ]  # fmt: skip
    (mapping,) = mappings
    data = synth["stacks"].data
    table_id = data.get_logical_id(data.transactions_table.node.default_child)
    assert _exported(synth, mapping["EventSourceArn"]) == {"Fn::GetAtt": [table_id, "StreamArn"]}
    assert mapping["FilterCriteria"] == {"Filters": [{"Pattern": '{"eventName":["INSERT"]}'}]}
    assert mapping["BisectBatchOnFunctionError"] is True
    statements = _policy_statements(_runtime(synth), "StreamingExtractRole")
    by_sid = {s.get("Sid"): s for s in statements}
    assert set(as_list(by_sid["PutOnStream"]["Action"])) >= {"kinesis:PutRecords"}
    data_keys = by_sid["DataKeysByContext"]
    assert data_keys["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:use": ["pii-fields", "token-secret"]}
    }
    # only its tables: tombstones and wrapped data keys (no customers, cards or online state)
    tables = {
        flatten(r).rsplit("/", 1)[-1]
        for s in statements
        for r in as_list(s["Resource"])
        if ":table/" in flatten(r)
    }
    assert tables == {"cdp-erasures", "cdp-data-keys"}


def test_transform_lambda_reports_partial_failures_with_a_dlq_and_writes_only_its_tables(synth) -> None:
    from infra.stream_functions import TRANSFORM_HANDLER

    streaming = synth["stacks"].runtime.streaming
    logical_id, props = _function(synth, streaming.transform)
    assert props["ImageConfig"]["Command"] == [TRANSFORM_HANDLER]
    (mapping,) = [
        m["Properties"] for m in resources(_runtime(synth), "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": logical_id}
    ]  # fmt: skip
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True and mapping["MaximumRetryAttempts"] == 5
    data = synth["stacks"].data
    stream_id = data.get_logical_id(data.stream.node.default_child)
    assert _exported(synth, mapping["EventSourceArn"]) == {"Fn::GetAtt": [stream_id, "Arn"]}
    queue_id = synth["stacks"].runtime.get_logical_id(streaming.failed_batches.node.default_child)
    assert mapping["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}}
    queue = _runtime(synth)["Resources"][queue_id]["Properties"]
    assert "KmsMasterKeyId" in queue
    statements = {s.get("Sid"): s for s in _policy_statements(_runtime(synth), "StreamingTransformRole")}
    written = sorted(
        flatten(r).rsplit(">/", 1)[-1] for r in statements["ScoredRowsAlertsQuarantine"]["Resource"]
    )
    assert written == ["fraud_alerts/*", "stream_quarantine/*", "transactions_scored/*"]
    # every object it may write: its three tables, the challenger's shadow rows, its query results
    assert _lake_writes(statements) == {
        "fraud_alerts/*",
        "stream_quarantine/*",
        "transactions_scored/*",
        "transactions_shadow/*",
        "_athena-results/*",
    }
    endpoint = flatten(statements["ScoreOnTheEndpoint"]["Resource"])
    assert endpoint.endswith(f":endpoint/{synth['names'].fraud_endpoint}")
    tables = {flatten(r).rsplit("/", 1)[-1] for r in statements["OnlineStateAndClaims"]["Resource"]}
    assert tables == {"cdp-online-features", "cdp-landed-index"}


def _lake_writes(statements: dict[str, dict[str, Any]]) -> set[str]:
    """The lake (and other bucket) object patterns the statements allow `s3:PutObject` on."""
    writes = [s for s in statements.values() if "s3:PutObject" in as_list(s["Action"])]
    return {flatten(r).rsplit(">/", 1)[-1] for s in writes for r in as_list(s["Resource"])}


def _actions_by_sid(statements: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    return {sid: set(as_list(s["Action"])) for sid, s in statements.items()}


REGISTRY_READ = {
    "sagemaker:DescribeModelPackage",
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:ListTags",
}
QUERIES = {
    "PlatformQueries": {
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:GetQueryResults",
        "athena:StopQueryExecution",
    },
    "Catalog": {"glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"},
    "QueryResults": {"s3:GetObject", "s3:PutObject"},
    "QueryResultsBucket": {"s3:GetBucketLocation"},
}
KEY_VIA = {"kms:Decrypt", "kms:GenerateDataKey"}


def test_transform_lambda_scores_the_challenger_in_shadow_with_registry_reads_only(synth) -> None:
    """The shadow path of `inference.streaming.handler` in AWS: the challenger tag and version read from
    the registry (no list, no write), its artifacts from the lake, its scores to `transactions_shadow`;
    the role's full grant set is pinned, so nothing more creeps in."""
    statements = {s.get("Sid"): s for s in _policy_statements(_runtime(synth), "StreamingTransformRole")}
    assert set(as_list(statements["RegistryRead"]["Action"])) == REGISTRY_READ
    assert sorted(flatten(r).split(":sagemaker:", 1)[1] for r in statements["RegistryRead"]["Resource"]) == [
        "eu-west-1:<AWS::AccountId>:model-package-group/cdp-*",
        "eu-west-1:<AWS::AccountId>:model-package/cdp-*/*",
    ]
    (artifacts,) = as_list(statements["ChallengerArtifacts"]["Resource"])
    assert flatten(artifacts).endswith(">/model-registry/*")
    assert statements["ChallengerArtifacts"]["Action"] == "s3:GetObject"
    (shadow,) = as_list(statements["ChallengerShadowRows"]["Resource"])
    assert flatten(shadow).endswith(">/transactions_shadow/*")
    assert _actions_by_sid(statements) == {
        "OwnLogs": {"logs:CreateLogStream", "logs:PutLogEvents"},
        "VpcNetworkInterfaces": {
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        },
        "ReadStream": {
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:GetRecords",
            "kinesis:GetShardIterator",
            "kinesis:ListShards",
        },
        "FailedBatchesDestination": {"sqs:SendMessage", "sqs:GetQueueAttributes"},
        "OnlineStateAndClaims": {
            "dynamodb:GetItem",
            "dynamodb:BatchGetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:Query",
            "dynamodb:DescribeTable",
        },
        "ScoredRowsAlertsQuarantine": {"s3:PutObject"},
        "ChallengerShadowRows": {"s3:PutObject"},
        "RegistryRead": REGISTRY_READ,
        "ChallengerArtifacts": {"s3:GetObject"},
        "ChallengerArtifactsList": {"s3:ListBucket"},
        "CardProfiles": {"s3:GetObject"},
        "CardProfilesList": {"s3:ListBucket"},
        **QUERIES,
        "Catalog": QUERIES["Catalog"]
        | {"glue:CreateTable", "glue:UpdateTable", "glue:BatchCreatePartition", "glue:CreatePartition"},
        "PlatformKeyThroughServices": KEY_VIA,
        "ScoreOnTheEndpoint": {"sagemaker:InvokeEndpoint"},
        "Metrics": {"cloudwatch:PutMetricData"},
    }


# -- public API --------------------------------------------------------------------------------------
def test_api_routes_are_the_apps_public_openapi_operations(synth, tmp_path, monkeypatch) -> None:
    from cdp.settings import get_settings
    from inference.app import create_app
    from infra.public_api import PUBLIC_ROUTES

    monkeypatch.setenv("CDP_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        document = create_app().openapi()
    finally:
        get_settings.cache_clear()
    app_routes = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items() if path.startswith("/v1/")
        for method in operations
    }  # fmt: skip
    routes = {
        r["Properties"]["RouteKey"] for r in resources(_runtime(synth), "AWS::ApiGatewayV2::Route").values()
    }
    assert routes == app_routes == {f"{m} {p}" for p, methods in PUBLIC_ROUTES.items() for m in methods}
    (api,) = resources(_runtime(synth), "AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "HTTP"
    (integration,) = resources(_runtime(synth), "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


def test_api_stage_is_throttled_and_its_access_log_holds_no_personal_data(synth) -> None:
    from infra.public_api import THROTTLE_BURST, THROTTLE_RATE_PER_SECOND

    (stage,) = resources(_runtime(synth), "AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == THROTTLE_RATE_PER_SECOND
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == THROTTLE_BURST
    log_format = props["AccessLogSettings"]["Format"]
    fields = json.loads(log_format)
    assert fields["route"] == "$context.routeKey"
    for personal in ("$context.path", "$context.identity", "sourceIp", "userAgent", "authorizer"):
        assert personal not in log_format, personal
    destination = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    log_group = _runtime(synth)["Resources"][destination]["Properties"]
    assert "KmsKeyId" in log_group and log_group["RetentionInDays"] == 365


def test_api_lambda_may_record_notice_replies_and_land_their_labels_and_nothing_more(synth) -> None:
    """The API Lambda's full grant set is pinned. `POST /v1/notices/reply` reads a reply code, answers it
    once (a conditional update) and lands the labels under `fraud_feedback/`: get/put/update on the
    `notice-replies` table only (no delete, scan or query), puts under that one lake prefix only."""
    names = synth["names"]
    statements = {s.get("Sid"): s for s in _policy_statements(_runtime(synth), "PublicApiHandlerRole")}
    (replies,) = as_list(statements["NoticeReplies"]["Resource"])
    assert flatten(replies).endswith(f":table/{names.table('notice-replies')}")
    assert _lake_writes(statements) == {"fraud_feedback/*"}
    assert statements["PlatformKeyThroughServices"]["Condition"] == {
        "StringEquals": {"kms:ViaService": ["s3.eu-west-1.amazonaws.com", "dynamodb.eu-west-1.amazonaws.com"]}
    }
    assert _actions_by_sid(statements) == {
        "OwnLogs": {"logs:CreateLogStream", "logs:PutLogEvents"},
        "VpcNetworkInterfaces": {
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        },
        "ApiKeys": {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"},
        "OnlineState": {"dynamodb:GetItem", "dynamodb:BatchGetItem"},
        # the reply route: read a code, answer it once; no put, delete, scan or query
        "NoticeReplies": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "RegistryRead": REGISTRY_READ,
        "RegistryList": {"sagemaker:ListModelPackages"},
        "ModelsAndProfiles": {"s3:GetObject"},
        "ModelsAndProfilesList": {"s3:ListBucket"},
        # the reply route's labels (added with the table): new objects under fraud_feedback/ only
        "ReplyLabels": {"s3:PutObject"},
        "PlatformKeyThroughServices": KEY_VIA,
        "Metrics": {"cloudwatch:PutMetricData"},
    }


# -- jobs --------------------------------------------------------------------------------------------
def test_batch_jobs_run_on_fargate_in_the_private_subnets_from_the_job_image(synth) -> None:
    from infra.jobs import BATCH_COMMAND, DRIFT_COMMAND

    template = _runtime(synth)
    (compute,) = resources(template, "AWS::Batch::ComputeEnvironment").values()
    assert compute["Properties"]["ComputeResources"]["Type"] == "FARGATE"
    assert compute["Properties"]["ComputeResources"]["Subnets"]
    definitions = {
        tuple(d["Properties"]["ContainerProperties"]["Command"]): d["Properties"]
        for d in resources(template, "AWS::Batch::JobDefinition").values()
    }
    assert set(definitions) == {tuple(BATCH_COMMAND), tuple(DRIFT_COMMAND)}
    for definition in definitions.values():
        container = definition["ContainerProperties"]
        assert definition["PlatformCapabilities"] == ["FARGATE"]
        assert "container-assets" in json.dumps(container["Image"])  # the image built from the repository
        assert container["JobRoleArn"] != container["ExecutionRoleArn"]
        assert {e["Name"]: e["Value"] for e in container["Environment"]}["CDP_BACKEND"] == "aws"
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_a_landing_drop_starts_the_batch_job_and_a_schedule_starts_the_drift_job(synth) -> None:
    from infra.jobs import DRIFT_SCHEDULE

    template = _runtime(synth)
    _, rule = _one(template, "AWS::Events::Rule", Name="cdp-batch-on-landing")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"]["bucket"]["name"] == ["cdp-lake-test"]
    assert pattern["detail"]["object"]["key"] == [{"wildcard": "landing/*/_READY"}]
    (target,) = rule["Properties"]["Targets"]
    assert "BatchParameters" in target
    assert target["InputTransformer"]["InputTemplate"] == '{"Parameters": {"drop": "s3://<bucket>/<key>"}}'
    data_lake = [
        b for b in resources(synth["json"]["CdpDataPlane"], "AWS::S3::Bucket").values()
        if b["Properties"].get("BucketName") == "cdp-lake-test"
    ]  # fmt: skip
    assert data_lake[0]["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    (schedule,) = resources(template, "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == DRIFT_SCHEDULE
    assert props["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:batch:submitJob"
    assert "KmsKeyArn" in props
    role_id = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    statements = {s["Sid"]: s for s in _policy_statements(template, role_id)}
    assert set(statements) == {"SubmitJob", "DecryptOwnSchedule"}
    assert (
        statements["SubmitJob"]["Action"] == "batch:SubmitJob"
        and len(statements["SubmitJob"]["Resource"]) == 2
    )
    assert statements["DecryptOwnSchedule"]["Action"] == "kms:Decrypt"


def test_drift_job_may_publish_metrics_and_set_the_loops_alarms_only(synth) -> None:
    statements = {s.get("Sid"): s for s in _policy_statements(_runtime(synth), "JobsDriftJobRole")}
    assert statements["Metrics"]["Condition"] == {"StringLike": {"cloudwatch:namespace": ["CDP/*"]}}
    assert flatten(statements["LoopAlarms"]["Resource"]).endswith(":alarm:cdp-*")
    assert flatten(statements["LoopEvents"]["Resource"]).endswith(":event-bus/default")
    # its reports, its query results, a switch's registry records and the audit checkpoints; nothing else
    assert _lake_writes(statements) == {
        "monitoring/*",
        "_athena-results/*",
        "model-registry/cdp-*/evidence/*",
        "model-registry/cdp-*/champion-history/*",
        "model-registry/cdp-*/model-cards/*",
        "audit-checkpoints/*",
    }


def test_drift_job_may_compare_shadow_rows_switch_challengers_and_audit_nothing_more(synth) -> None:
    """`cdp monitor run` -> `switch_challengers` in AWS: the shadow rows read through Athena, the package's
    approval status and the group's champion/challenger tags set, evidence written under the registry,
    each decision appended to the audit log (as the promotion-gate service, model-approver by the role
    map); the role's full grant set is pinned, so nothing more creeps in."""
    from cdp.security.audit.keys import AUDIT_KEY_IDS, AUDIT_KEY_USES
    from infra.audit_grants import AUDIT_APPEND_ACTIONS

    template = _runtime(synth)
    statements = {s.get("Sid"): s for s in _policy_statements(template, "JobsDriftJobRole")}
    read = {flatten(r).rsplit(">/", 1)[-1] for r in as_list(statements["LakeRead"]["Resource"])}
    assert "transactions_shadow/*" in read and "transactions_scored/*" in read
    assert "transactions_shadow/*" in statements["LakeReadList"]["Condition"]["StringLike"]["s3:prefix"]
    (package,) = as_list(statements["RegistryApproval"]["Resource"])
    assert flatten(package).endswith(":model-package/cdp-*/*")
    (group,) = as_list(statements["RegistryAliases"]["Resource"])
    assert flatten(group).endswith(":model-package-group/cdp-*")
    data = synth["stacks"].data
    audit_id = data.get_logical_id(data.audit_table.node.default_child)
    (audit,) = as_list(statements["AuditAppendOnly"]["Resource"])
    assert _exported(synth, audit) == {"Fn::GetAtt": [audit_id, "Arn"]}
    checkpoints_id = data.get_logical_id(data.audit_checkpoints.node.default_child)
    (checkpoints,) = as_list(statements["AuditCheckpointObjects"]["Resource"])
    assert _exported(synth, checkpoints["Fn::Join"][1][0]) == {"Fn::GetAtt": [checkpoints_id, "Arn"]}
    assert statements["AuditKeyEntries"]["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": list(AUDIT_KEY_IDS)}
    }
    assert statements["AuditKeyUnwrap"]["Condition"] == {
        "StringEquals": {"kms:EncryptionContext:use": list(AUDIT_KEY_USES)}
    }
    assert statements["PlatformKeyThroughServices"]["Condition"]["StringEquals"]["kms:ViaService"] == [
        "s3.eu-west-1.amazonaws.com",
        "dynamodb.eu-west-1.amazonaws.com",
    ]
    assert _actions_by_sid(statements) == {
        **QUERIES,
        "LakeRead": {"s3:GetObject"},
        "LakeReadList": {"s3:ListBucket"},
        "DriftReports": {"s3:PutObject"},
        "PlatformKeyThroughServices": KEY_VIA,
        "Metrics": {"cloudwatch:PutMetricData"},
        "LoopAlarms": {"cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm", "cloudwatch:SetAlarmState"},
        "LoopEvents": {"events:PutEvents"},
        "RegistryRead": REGISTRY_READ,
        "RegistryList": {"sagemaker:ListModelPackages"},
        "RegistryApproval": {"sagemaker:UpdateModelPackage"},
        "RegistryAliases": {"sagemaker:AddTags", "sagemaker:DeleteTags"},
        "RegistryRecords": {"s3:PutObject"},
        "AuditAppendOnly": set(AUDIT_APPEND_ACTIONS),
        "AuditCheckpointObjects": {"s3:PutObject", "s3:GetObject"},
        "AuditCheckpointList": {"s3:ListBucket"},
        "AuditKeyEntries": {"dynamodb:GetItem"},
        "AuditKeyUnwrap": {"kms:Decrypt"},
        "PlatformKeyArn": {"kms:DescribeKey"},
    }
    # the job acts as the promotion-gate service: its own role is model-approver in CDP_IAM_ROLE_MAP
    jobs = synth["stacks"].runtime.jobs
    definition = template["Resources"][
        synth["stacks"].runtime.get_logical_id(jobs.drift_job.node.default_child)
    ]
    env = {e["Name"]: e["Value"] for e in definition["Properties"]["ContainerProperties"]["Environment"]}
    role_id = synth["stacks"].runtime.get_logical_id(jobs.drift_role.node.default_child)
    assert env["CDP_IAM_ROLE_MAP"] == {
        "Fn::Join": ["", ['{"', {"Fn::GetAtt": [role_id, "Arn"]}, '": ["model-approver"]}']]
    }
    batch = template["Resources"][synth["stacks"].runtime.get_logical_id(jobs.batch_job.node.default_child)]
    assert "CDP_IAM_ROLE_MAP" not in {
        e["Name"] for e in batch["Properties"]["ContainerProperties"]["Environment"]
    }


# -- governance --------------------------------------------------------------------------------------
def test_trail_is_multi_region_validated_encrypted_and_locked(synth) -> None:
    from infra.governance import TRAIL_LOG_RETENTION_DAYS

    template = synth["json"]["CdpGovernance"]
    (trail,) = resources(template, "AWS::CloudTrail::Trail").values()
    props = trail["Properties"]
    assert props["IsMultiRegionTrail"] is True and props["EnableLogFileValidation"] is True
    assert props["IncludeGlobalServiceEvents"] is True and "KMSKeyId" in props
    assert props["EventSelectors"][0]["DataResources"][0]["Type"] == "AWS::S3::Object"
    bucket = template["Resources"][props["S3BucketName"]["Ref"]]["Properties"]
    assert bucket["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {
        "Mode": "COMPLIANCE",
        "Days": TRAIL_LOG_RETENTION_DAYS,
    }
    key_policy = next(iter(resources(synth["json"]["CdpDataPlane"], "AWS::KMS::Key").values()))
    sids = {s.get("Sid") for s in key_policy["Properties"]["KeyPolicy"]["Statement"]}
    assert "CloudTrailEncryptsTrailLogs" in sids


def test_every_loop_alarm_notifies_the_operators_topic(synth) -> None:
    alarms = resources(synth["json"]["CdpMonitoringLoop"], "AWS::CloudWatch::Alarm").values()
    assert alarms
    for alarm in alarms:
        (action,) = alarm["Properties"]["AlarmActions"]
        assert "OperatorAlarms" in action["Fn::ImportValue"]


def test_topics_are_encrypted_and_tls_only(synth) -> None:
    from infra.governance import FRAUD_ALERTS_TOPIC, OPERATOR_ALARMS_TOPIC

    template = synth["json"]["CdpGovernance"]
    topics = {
        t["Properties"]["TopicName"]: t["Properties"] for t in resources(template, "AWS::SNS::Topic").values()
    }
    assert set(topics) == {FRAUD_ALERTS_TOPIC, OPERATOR_ALARMS_TOPIC}
    assert all("KmsMasterKeyId" in t for t in topics.values())
    policies = resources(template, "AWS::SNS::TopicPolicy").values()
    denies = [
        s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"
    ]
    assert len(denies) == 2 and all(
        s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies
    )


def test_backup_plan_covers_every_table_and_the_lake_hourly_and_daily_in_a_locked_vault(synth) -> None:
    """Without a DR vault (this synth is not prod) the recovery points stay in the region: no copy action.
    The prod case is in tests/test_infra_recovery.py."""
    from infra.governance import (
        BACKUP_RETENTION_DAYS,
        HOURLY_RETENTION_DAYS,
        VAULT_LOCK_GRACE_DAYS,
        VAULT_LOCK_MAX_RETENTION_DAYS,
        VAULT_LOCK_MIN_RETENTION_DAYS,
    )
    from infra.table_specs import table_specs

    template = synth["json"]["CdpGovernance"]
    (plan,) = resources(template, "AWS::Backup::BackupPlan").values()
    rules = {r["RuleName"]: r for r in plan["Properties"]["BackupPlan"]["BackupPlanRule"]}
    assert set(rules) == {"hourly", "daily"}
    assert rules["hourly"]["ScheduleExpression"] == "cron(0 * * * ? *)"
    assert rules["hourly"]["Lifecycle"] == {"DeleteAfterDays": HOURLY_RETENTION_DAYS}
    assert rules["daily"]["ScheduleExpression"].startswith("cron(0 3 ")
    assert rules["daily"]["Lifecycle"] == {"DeleteAfterDays": BACKUP_RETENTION_DAYS}
    assert not any("CopyActions" in rule for rule in rules.values())
    (selection,) = resources(template, "AWS::Backup::BackupSelection").values()
    selected = selection["Properties"]["BackupSelection"]["Resources"]
    assert len(selected) == len(table_specs()) + 2  # every table, the audit log's and the lake
    (vault,) = resources(template, "AWS::Backup::BackupVault").values()
    assert "EncryptionKeyArn" in vault["Properties"]
    assert vault["Properties"]["LockConfiguration"] == {
        "MinRetentionDays": VAULT_LOCK_MIN_RETENTION_DAYS,
        "MaxRetentionDays": VAULT_LOCK_MAX_RETENTION_DAYS,
        "ChangeableForDays": VAULT_LOCK_GRACE_DAYS,
    }
    # the lock admits every rule's retention
    for rule in rules.values():
        days = rule["Lifecycle"]["DeleteAfterDays"]
        assert VAULT_LOCK_MIN_RETENTION_DAYS <= days <= VAULT_LOCK_MAX_RETENTION_DAYS


def test_the_platform_key_is_a_multi_region_primary(synth) -> None:
    (key,) = resources(synth["json"]["CdpDataPlane"], "AWS::KMS::Key").values()
    assert key["Properties"]["MultiRegion"] is True and key["Properties"]["EnableKeyRotation"] is True


def test_the_pipeline_hands_its_dr_vault_to_the_prod_deploy_only(synth) -> None:
    from tests.infra_synth import PROD_DR_VAULT

    delivery = synth["json"]["CdpDelivery"]
    (pipeline,) = resources(delivery, "AWS::CodePipeline::Pipeline").values()
    projects = resources(delivery, "AWS::CodeBuild::Project")
    commands = {}
    for stage in pipeline["Properties"]["Stages"][2:]:
        project = projects[stage["Actions"][-1]["Configuration"]["ProjectName"]["Ref"]]["Properties"]
        commands[stage["Name"]] = json.loads(project["Source"]["BuildSpec"])["phases"]["build"]["commands"][
            -1
        ]
    assert "-c environment=prod" in commands["Deploy-prod"]
    assert f"-c drBackupVaultArn={PROD_DR_VAULT}" in commands["Deploy-prod"]
    assert "-c environment=staging" in commands["Deploy-staging"]
    assert "drBackupVaultArn" not in commands["Deploy-staging"]
    # the pipeline account's own stacks do not copy to prod's vault
    (plan,) = resources(synth["json"]["CdpGovernance"], "AWS::Backup::BackupPlan").values()
    assert PROD_DR_VAULT not in json.dumps(plan)


# -- least privilege, across the stacks ----------------------------------------------------------------
def _grant_statements(synth):
    for stack_name, template in synth["json"].items():
        stack = next(s for s in synth["stacks"].all() if s.stack_name == stack_name)
        boundary = stack.get_logical_id(stack.node.find_child("PermissionsBoundary").node.default_child)
        for logical_id, policy in resources(template, "AWS::IAM::ManagedPolicy").items():
            if logical_id != boundary:
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    yield f"{stack_name}/{logical_id}", statement


def test_the_platform_key_is_never_granted_for_direct_decryption_without_a_condition(synth) -> None:
    """kms:Decrypt / GenerateDataKey on the platform key: through a named service, or with the data keys'
    encryption context (the build and promotion roles' known unconditioned grant is gone)."""
    checked = set()
    for where, statement in _grant_statements(synth):
        actions = as_list(statement["Action"])
        if not any(a.startswith(("kms:Decrypt", "kms:GenerateDataKey")) for a in actions):
            continue
        if "CdpMlPlatform" in where:
            continue  # SageMaker jobs encrypt their volumes and outputs with it directly (by design)
        condition = statement.get("Condition", {})
        keys = {k for block in condition.values() for k in block}
        assert keys & {
            "kms:ViaService",
            "kms:EncryptionContext:use",
            "kms:EncryptionContext:aws:scheduler:schedule-arn",
        }, (
            where,
            statement,
        )
        checked.add(where.split("/")[1][:12])
    assert any(w.startswith("BuildRole") for w in checked) and any(
        w.startswith("PromoteRole") for w in checked
    )


def test_runtime_resources_are_encrypted_with_the_platform_key(synth) -> None:
    template = _runtime(synth)
    for logical_id, group in resources(template, "AWS::Logs::LogGroup").items():
        assert "KmsKeyId" in group["Properties"] and "RetentionInDays" in group["Properties"], logical_id
    for logical_id, queue in resources(template, "AWS::SQS::Queue").items():
        assert "KmsMasterKeyId" in queue["Properties"], logical_id
    for stack_name, stack_template in synth["json"].items():
        for logical_id, group in resources(stack_template, "AWS::Logs::LogGroup").items():
            assert "RetentionInDays" in group["Properties"], (stack_name, logical_id)


# -- rule packs ----------------------------------------------------------------------------------------
ACCEPTED_FINDINGS = {
    # (stack, rule): why, in one line (each suppression's full reason is in the stack's code)
    ("CdpDataPlane", "AwsSolutions-IAM5"): "analyst policy: the lake's table prefixes",
    ("CdpDataPlane", "AwsSolutions-KDS3"): "the platform's own key instead of aws/kinesis",
    ("CdpDataPlane", "PCI.DSS.321-S3DefaultEncryptionKMS"): "server access logs accept SSE-S3 only",
    (
        "CdpDataPlane",
        "PCI.DSS.321-S3BucketReplicationEnabled",
    ): "versioned + AWS Backup; DR region is the bank's",
    ("CdpMlPlatform", "AwsSolutions-IAM5"): "per-run job, table and object names",
    ("CdpDelivery", "AwsSolutions-IAM5"): "per-build logs, reports, artifacts; cdp-* registry",
    (
        "CdpDelivery",
        "PCI.DSS.321-CodeBuildProjectSourceRepoUrl",
    ): "CodeConnections auth, no credentials in URL",
    ("CdpDelivery", "PCI.DSS.321-S3BucketReplicationEnabled"): "pipeline artifacts, rebuilt from Git",
    ("CdpMonitoringLoop", "AwsSolutions-IAM5"): "the permissions boundary's cap",
    ("CdpGovernance", "AwsSolutions-IAM4"): "AWS Backup's service-role policies",
    ("CdpGovernance", "AwsSolutions-IAM5"): "boundary cap; the CloudTrail construct's delivery role",
    ("CdpGovernance", "PCI.DSS.321-IAMNoInlinePolicy"): "the CloudTrail construct's delivery role",
    (
        "CdpGovernance",
        "PCI.DSS.321-S3BucketReplicationEnabled",
    ): "trail logs: Object Lock; DR region is the bank's",
    (
        "CdpRuntime",
        "AwsSolutions-IAM5",
    ): "lake prefixes, cdp tables, cdp-* registry and alarms; '*' for listed",
    ("CdpRuntime", "AwsSolutions-APIG4"): "the app authorises every protected route itself",
    ("CdpRuntime", "AwsSolutions-SQS3"): "the queue is itself the dead-letter destination",
}
STACKS = ("CdpDataPlane", "CdpMlPlatform", "CdpDelivery", "CdpMonitoringLoop", "CdpGovernance", "CdpRuntime")
for _stack in STACKS:  # each stack's permissions boundary: an upper limit, not a grant (infra.roles)
    for _rule in ("IAMPolicyNoStatementsWithAdminAccess", "IAMPolicyNoStatementsWithFullAccess"):
        ACCEPTED_FINDINGS[(_stack, f"PCI.DSS.321-{_rule}")] = "the permissions boundary's cap"
    ACCEPTED_FINDINGS.setdefault((_stack, "AwsSolutions-IAM5"), "the permissions boundary's cap")
"""Every (stack, rule) with a suppressed finding: a new one fails the test until it is listed here."""


def _nag_rows(synth, pack: str, stack_name: str) -> list[dict[str, str]]:
    (path,) = synth["outdir"].glob(f"{pack}-*{stack_name}-NagReport.csv")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_both_rule_packs_ran_on_every_stack_with_no_unsuppressed_finding(synth) -> None:
    from aws_cdk.assertions import Annotations, Match

    from infra.nag_rules import RULE_PACKS

    suppressed = set()
    for stack in synth["stacks"].all():
        annotations = Annotations.from_stack(stack)
        for pack in RULE_PACKS:
            pattern = Match.string_like_regexp(f"{pack.replace('.', '[.]')}-.*")
            assert annotations.find_error("*", pattern) == [], (stack.stack_name, pack)
            assert annotations.find_warning("*", pattern) == [], (stack.stack_name, pack)
            rows = _nag_rows(synth, pack, stack.stack_name)
            assert rows, (stack.stack_name, pack)
            assert {row["Compliance"] for row in rows} <= {"Compliant", "Suppressed", "N/A"}, stack.stack_name
            for row in rows:
                if row["Compliance"] == "Suppressed":
                    assert len(row["Exception Reason"]) > 80, (stack.stack_name, row["Rule ID"])
                    suppressed.add((stack.stack_name, row["Rule ID"]))
    listed = set(ACCEPTED_FINDINGS)
    assert suppressed == listed, {"new": suppressed - listed, "gone": listed - suppressed}
    pci = {(r["Rule ID"], r["Compliance"]) for r in _nag_rows(synth, "PCI.DSS.321", "CdpRuntime")}
    assert {
        ("PCI.DSS.321-LambdaInsideVPC", "Compliant"),
        ("PCI.DSS.321-VPCDefaultSecurityGroupClosed", "Compliant"),
    } <= pci


CFN_LINT_IGNORED = {
    "W3005": "the CDK adds an explicit DependsOn on a role that a GetAtt already orders (harmless, CDK-made)",
    "W3045": "the access-log bucket grants S3 log delivery by the LogDeliveryWrite ACL, which the CDK sets "
    "for a target of buckets in other stacks (a bucket policy naming them would make the stacks a cycle)",
}
"""cfn-lint checks not run, with their reason (errors are never ignored)."""


def test_cfn_lint_passes_on_every_synthesised_template(synth) -> None:
    templates = sorted(str(p) for p in synth["outdir"].glob("*.template.json"))
    assert len(templates) == 6
    lint = Path(sys.executable).parent / "cfn-lint"
    ignored = ["--ignore-checks", *CFN_LINT_IGNORED]
    result = subprocess.run(
        [str(lint), "--regions", "eu-west-1", *ignored, "--", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# -- serving -------------------------------------------------------------------------------------------
def test_pipelines_register_the_inference_image_built_from_the_repository(synth) -> None:
    """The build runs the pipelines with CDP_INFERENCE_IMAGE_URI = the serving image asset (what the model
    packages name and the deploy step creates the endpoint from); SageMaker may pull it."""
    delivery = synth["stacks"].delivery
    props = synth["json"]["CdpDelivery"]["Resources"][
        delivery.get_logical_id(delivery.build.node.default_child)
    ]["Properties"]
    env = {v["Name"]: v["Value"] for v in props["Environment"]["EnvironmentVariables"]}
    uri = json.dumps(env["CDP_INFERENCE_IMAGE_URI"])
    assert "container-assets" in uri and delivery.serving_image.asset_hash in uri
    manifest = json.loads(next(synth["outdir"].glob("CdpDelivery.assets.json")).read_text())
    (image,) = manifest["dockerImages"].values()
    assert (
        image["source"]["dockerFile"] == "inference/Dockerfile"
        and image["source"]["dockerBuildTarget"] == "serving"
    )
    pulls = [
        s for s in _policy_statements(synth["json"]["CdpMlPlatform"], "ExecutionRole")
        if "ecr:BatchGetImage" in as_list(s["Action"]) and "container-assets" in json.dumps(s["Resource"])
    ]  # fmt: skip
    assert pulls


# -- environments --------------------------------------------------------------------------------------
def test_pipeline_deploys_staging_then_waits_for_approval_before_prod(synth) -> None:
    from infra.delivery import CDK_CLI_VERSION

    delivery = synth["json"]["CdpDelivery"]
    (pipeline,) = resources(delivery, "AWS::CodePipeline::Pipeline").values()
    stages = pipeline["Properties"]["Stages"]
    assert [s["Name"] for s in stages] == ["Source", "Build", "Deploy-staging", "Deploy-prod"]
    staging, prod = stages[2]["Actions"], stages[3]["Actions"]
    assert [a["ActionTypeId"]["Provider"] for a in staging] == ["CodeBuild"]
    assert [(a["ActionTypeId"]["Provider"], a["RunOrder"]) for a in prod] == [("Manual", 1), ("CodeBuild", 2)]
    projects = resources(delivery, "AWS::CodeBuild::Project")
    for actions, account in ((staging, STAGING), (prod, PROD)):
        project = projects[actions[-1]["Configuration"]["ProjectName"]["Ref"]]["Properties"]
        (command,) = json.loads(project["Source"]["BuildSpec"])["phases"]["build"]["commands"][1:]
        assert command.startswith(
            f"npx --yes aws-cdk@{CDK_CLI_VERSION} deploy --all --require-approval never"
        )
        assert f"-c account={account}" in command and "-c repository=bank/cdp-platform" in command
        role_id = project["ServiceRole"]["Fn::GetAtt"][0]
        assume = [s for s in _policy_statements(delivery, role_id) if s.get("Sid") == "AssumeBootstrapRoles"]
        assert [flatten(s["Resource"]) for s in assume] == [
            f"arn:<AWS::Partition>:iam::{account}:role/cdk-hnb659fds-*"
        ]


# -- bad configuration ---------------------------------------------------------------------------------
def test_missing_context_fails_synth_naming_the_value() -> None:
    import aws_cdk as cdk

    from cdp.settings import Settings
    from infra.app import build_stacks

    app = cdk.App(context={"connectionArn": "arn:aws:codeconnections:eu-west-1:1:connection/x"})
    with pytest.raises(ValueError, match="missing CDK context 'repository'"):
        build_stacks(app, Settings(aws_region="eu-west-1"))


def test_one_environment_account_without_the_other_fails_synth_naming_it() -> None:
    import aws_cdk as cdk

    from cdp.settings import Settings
    from infra.app import build_stacks
    from tests.infra_synth import CONTEXT

    context = {k: v for k, v in CONTEXT.items() if k != "prodAccount"}
    with pytest.raises(ValueError, match="missing CDK context 'prodAccount'"):
        build_stacks(cdk.App(context=context), Settings(aws_region="eu-west-1"))


def test_a_missing_image_definition_fails_synth_naming_it(monkeypatch, tmp_path) -> None:
    from infra import images

    monkeypatch.setattr(images, "ROOT", tmp_path)
    with pytest.raises(ValueError, match="missing image definition 'infra/images/lambda.Dockerfile'"):
        images.lambda_code("inference.lambda_handler.handler")


# -- the picture ---------------------------------------------------------------------------------------
def test_the_architecture_diagram_is_generated_from_the_templates(synth) -> None:
    from infra.diagram import mermaid

    picture = mermaid(synth["json"])
    assert picture.startswith("flowchart LR\n")
    for stack in STACKS:
        assert f'    {stack}["<b>{stack}</b>' in picture
    assert "4 × Lambda function" in picture and "HTTP API" in picture and "CloudTrail trail" in picture
    edges = {
        tuple(line.strip().split(" -->")[0:1]) + (line.rsplit("| ", 1)[1],)
        for line in picture.splitlines()
        if "-->" in line
    }
    assert ("CdpRuntime", "CdpDataPlane") in edges and ("CdpMonitoringLoop", "CdpDelivery") in edges
    assert ("CdpDataPlane", "CdpRuntime") not in edges  # the data plane depends on nothing


def test_the_readme_picture_is_the_one_synthesised_from_the_tested_context(synth) -> None:
    """README.md's copy of the picture is `python -m infra.diagram` of the app in the tested context (the
    deploy pipeline with staging and prod); regenerate it with the command in the message."""
    from infra.diagram import mermaid, readme_picture
    from tests.infra_synth import CONTEXT

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    context = " ".join(f"-c {key}={value}" for key, value in CONTEXT.items())
    assert readme_picture(readme) == mermaid(synth["json"]), (
        f"regenerate: python -m infra.diagram --readme README.md {context}"
    )


def test_the_readme_picture_is_replaced_and_nothing_else() -> None:
    from infra.diagram import readme_picture, with_picture

    readme = (
        "intro\n```mermaid\nflowchart TD\n  a --> b\n```\n`python -m infra.diagram` prints:\n\n"
        "```mermaid\nflowchart LR\n    Old\n```\n\nafter\n```mermaid\nflowchart LR\n    Other\n```\n"
    )
    assert readme_picture(readme) == "flowchart LR\n    Old\n"
    updated = with_picture(readme, "flowchart LR\n    New\n")
    assert updated == readme.replace("    Old\n", "    New\n", 1) and "    Other\n" in updated
    with pytest.raises(ValueError, match="no ```mermaid flowchart LR block"):
        readme_picture("no picture here\n")
