"""The CDK app: one synth for the module, then assertions on the templates and on cdk-nag's findings.

The monitoring loop's alarms and rules must be exactly those of `monitoring.rules`; every table the
AWS adapters create must exist with the same keys; encryption and least privilege everywhere.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdp.aws_resources import ATHENA_ANALYST_RESULTS_PREFIX, AwsResources

# `infra` sets the jsii/CDK switches before aws_cdk is imported: import aws_cdk only after it.
from infra.nag_rules import STAR_RESOURCE_ACTIONS
from infra.resource_names import model_package_groups
from infra.table_specs import table_specs
from monitoring.rules import (
    DEPLOY_CHAMPION,
    PIPELINES,
    PROMOTE_MODEL,
    START_PIPELINE,
    loop_rules,
    model_alarms,
    slo_alarms,
)
from monitoring.slo import Objectives
from tests.infra_synth import CONNECTION, as_list, flatten, resources, synthesised


@pytest.fixture(scope="module")
def synth():
    """The app synthesised once (shared with the other infra test modules)."""
    return synthesised()


_resources, _flatten, _as_list = resources, flatten, as_list


def _export_source(synth, import_name: str) -> Any:
    """The value a stack exports under `import_name` (what an Fn::ImportValue resolves to)."""
    for template in synth["json"].values():
        for output in template.get("Outputs", {}).values():
            if output.get("Export", {}).get("Name") == import_name:
                return output["Value"]
    raise AssertionError(f"no export {import_name}")


def test_synth_produces_the_six_stacks(synth) -> None:
    assert set(synth["templates"]) == {
        "CdpDataPlane",
        "CdpMlPlatform",
        "CdpDelivery",
        "CdpMonitoringLoop",
        "CdpGovernance",
        "CdpRuntime",
    }


# -- data plane -------------------------------------------------------------------------------------
def test_lake_bucket_is_kms_encrypted_private_versioned_logged(synth) -> None:
    from aws_cdk.assertions import Match

    data = synth["templates"]["CdpDataPlane"]
    key_id = synth["stacks"].data.get_logical_id(synth["stacks"].data.key.node.default_child)
    data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": "cdp-lake-test",
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "lake/"},
        },
    )


def test_every_bucket_denies_plain_http_and_blocks_public_access(synth) -> None:
    buckets, policies = {}, {}
    for template in synth["json"].values():
        buckets.update(_resources(template, "AWS::S3::Bucket"))
        policies.update(_resources(template, "AWS::S3::BucketPolicy"))
    assert len(buckets) == 5  # lake, access logs, pipeline artifacts, audit checkpoints, trail logs
    tls_only = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                tls_only.add(policy["Properties"]["Bucket"]["Ref"])
    assert tls_only == set(buckets)
    for bucket in buckets.values():
        assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
        assert bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]


def test_kms_key_rotates_and_has_the_settings_alias(synth) -> None:
    data = synth["templates"]["CdpDataPlane"]
    data.resource_count_is("AWS::KMS::Key", 1)
    data.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    data.has_resource_properties("AWS::KMS::Alias", {"AliasName": synth["names"].kms_alias})


def test_card_verification_key_is_a_non_exportable_cvk_under_the_settings_alias(synth) -> None:
    from cdp.settings import Settings

    data = synth["templates"]["CdpDataPlane"]
    data.resource_count_is("AWS::PaymentCryptography::Key", 1)
    data.has_resource_properties(
        "AWS::PaymentCryptography::Key",
        {
            "Exportable": False,
            "KeyAttributes": {
                "KeyUsage": "TR31_C0_CARD_VERIFICATION_KEY",
                "KeyModesOfUse": {"Generate": True, "Verify": True},
            },
        },
    )
    alias = Settings().card_verification_key_arn  # what the card verifier addresses
    data.has_resource_properties("AWS::PaymentCryptography::Alias", {"AliasName": alias})
    assert synth["names"].card_verification_alias == alias
    arn = "arn:aws:payment-cryptography:eu-west-1:111122223333:key/kwapwa6qaifllw2h"
    assert AwsResources.from_settings(Settings(card_verification_key_arn=arn)).card_verification_alias is None


def test_stream_catalog_and_workgroup_are_encrypted_with_the_key(synth) -> None:
    data = synth["templates"]["CdpDataPlane"]
    key_arn = {
        "Fn::GetAtt": [
            synth["stacks"].data.get_logical_id(synth["stacks"].data.key.node.default_child),
            "Arn",
        ]
    }
    data.has_resource_properties(
        "AWS::Kinesis::Stream",
        {"Name": synth["names"].stream, "StreamEncryption": {"EncryptionType": "KMS", "KeyId": key_arn}},
    )
    data.has_resource_properties("AWS::Glue::Database", {"DatabaseInput": {"Name": "cdp"}})
    data.has_resource_properties(
        "AWS::Glue::DataCatalogEncryptionSettings",
        {
            "DataCatalogEncryptionSettings": {
                "EncryptionAtRest": {"CatalogEncryptionMode": "SSE-KMS", "SseAwsKmsKeyId": key_arn}
            }
        },
    )
    data.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "ResultConfiguration": {
                    "OutputLocation": "s3://cdp-lake-test/_athena-results/",
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": key_arn},
                },
            }
        },
    )


def _analyst_policy(synth) -> tuple[str, dict[str, dict[str, Any]]]:
    template = synth["json"]["CdpDataPlane"]
    ((logical_id, policy),) = [
        (k, p) for k, p in _resources(template, "AWS::IAM::ManagedPolicy").items()
        if p["Properties"].get("ManagedPolicyName") == "cdp-analyst-sql"
    ]  # fmt: skip
    statements = {st["Sid"]: st for st in policy["Properties"]["PolicyDocument"]["Statement"]}
    return logical_id, statements


def test_analyst_workgroup_enforces_encrypted_results_and_a_scan_cutoff(synth) -> None:
    data = synth["templates"]["CdpDataPlane"]
    key_arn = {
        "Fn::GetAtt": [
            synth["stacks"].data.get_logical_id(synth["stacks"].data.key.node.default_child),
            "Arn",
        ]
    }
    data.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "Name": "cdp-analyst",
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": 100 * 1024**3,
                "ResultConfiguration": {
                    "OutputLocation": f"s3://cdp-lake-test/{ATHENA_ANALYST_RESULTS_PREFIX}",
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": key_arn},
                },
            },
        },
    )


def test_analyst_policy_reaches_only_its_workgroup_the_catalog_and_the_lake_tables(synth) -> None:
    """Analysts: Athena in their workgroup only, Glue read, the lake's table prefixes read (not the query
    results of the platform, manifests, pipeline code), their own results, the key only through S3."""
    from infra.analyst_access import analyst_table_prefixes

    logical_id, statements = _analyst_policy(synth)
    assert set(statements) == {
        "AnalystWorkgroupOnly",
        "CatalogRead",
        "LakeTablesRead",
        "LakeTablesList",
        "LakeLocation",
        "OwnResults",
        "LakeKeyThroughS3Only",
    }
    athena_resources = [_flatten(r) for r in _as_list(statements["AnalystWorkgroupOnly"]["Resource"])]
    workgroup = "arn:<AWS::Partition>:athena:eu-west-1:<AWS::AccountId>:workgroup/cdp-analyst"
    assert athena_resources == [workgroup]
    assert all(a.startswith("glue:Get") for a in statements["CatalogRead"]["Action"])
    read = sorted(_flatten(r).split("/", 1)[1] for r in statements["LakeTablesRead"]["Resource"])
    assert read == sorted(f"{p}*" for p in analyst_table_prefixes())
    assert {"transactions/*", "customers/*", "cards/*"} <= set(read)
    for private in ("_athena-results/", "_manifests/", "pipelines/", ATHENA_ANALYST_RESULTS_PREFIX):
        assert not any(private.startswith(r.rstrip("*")) or r.startswith(private) for r in read), private
    assert statements["LakeTablesRead"]["Action"] == "s3:GetObject"
    listed = statements["LakeTablesList"]["Condition"]["StringLike"]["s3:prefix"]
    assert sorted(listed) == sorted([*read, f"{ATHENA_ANALYST_RESULTS_PREFIX}*"])
    own = [_flatten(r) for r in _as_list(statements["OwnResults"]["Resource"])]
    assert len(own) == 1 and own[0].endswith(f"/{ATHENA_ANALYST_RESULTS_PREFIX}*")
    key = statements["LakeKeyThroughS3Only"]
    assert sorted(_as_list(key["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert _flatten(key["Condition"]["StringEquals"]["kms:ViaService"]) == "s3.eu-west-1.amazonaws.com"
    roles = _resources(synth["json"]["CdpDataPlane"], "AWS::IAM::Role")
    (role,) = [r for r in roles.values() if r["Properties"].get("RoleName") == "cdp-analyst"]
    assert role["Properties"]["ManagedPolicyArns"] == [{"Ref": logical_id}]
    assert not role["Properties"].get("Policies")


def _adapter_key_schemas(prefix: str, audit_table: str) -> dict[str, list[dict[str, str]]]:
    """Each AWS adapter creates its own table in moto; their key schemas by table name."""
    from cdp.apikeys.dynamodb import DynamoDbApiKeyStore
    from cdp.idempotency.dynamodb import DynamoDbIdempotencyIndex
    from cdp.oltp.dynamodb import DynamoDbOltpStore
    from cdp.online.dynamodb import DynamoDbOnlineStore
    from cdp.security.audit.dynamodb import DynamoDbAuditLog
    from cdp.security.audit.keys import AuditKeys
    from cdp.security.datakeys.dynamodb import create_table as create_data_key_table
    from cdp.stream.dynamodb_checkpoints import DynamoDbCheckpoints

    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        DynamoDbOltpStore(boto3.resource("dynamodb", region_name="eu-west-1"), prefix).create_tables()
        DynamoDbOnlineStore(client, f"{prefix}online-features").create_table()
        DynamoDbApiKeyStore(client, f"{prefix}api-keys").create_table()
        create_data_key_table(client, f"{prefix}data-keys")
        DynamoDbCheckpoints(client, f"{prefix}stream-checkpoints", "cdp-transactions")
        DynamoDbIdempotencyIndex(client, f"{prefix}landed-index", "lake-sink").create_table()
        DynamoDbAuditLog(client, audit_table, AuditKeys.generate, checkpoints=None).create_table()  # type: ignore[arg-type]
        return {
            name: client.describe_table(TableName=name)["Table"]["KeySchema"]
            for name in client.list_tables()["TableNames"]
        }


def test_tables_match_the_adapters_and_use_the_key_with_pitr(synth) -> None:
    names = synth["names"]
    tables = {
        t["Properties"]["TableName"]: t["Properties"]
        for t in _resources(synth["json"]["CdpDataPlane"], "AWS::DynamoDB::Table").values()
    }
    assert set(tables) == {names.table(spec.suffix) for spec in table_specs()} | {names.audit_table}
    for name, schema in _adapter_key_schemas(names.table_prefix, names.audit_table).items():
        assert tables[name]["KeySchema"] == schema, name
    for name, props in tables.items():
        assert props["SSESpecification"]["SSEEnabled"] is True, name
        assert props["SSESpecification"]["SSEType"] == "KMS", name
        assert "KMSMasterKeyId" in props["SSESpecification"], name
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
    landed = tables[names.table("landed-index")]
    assert landed["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_reply_store_works_on_the_notice_replies_table_as_synthesised(synth) -> None:
    """The reply adapter creates no table of its own: its table is created in moto exactly as the data
    plane defines it (keys, attribute types) and the adapter's every operation runs on it."""
    from datetime import UTC, datetime

    from cdp.aws_resources import NOTICE_REPLIES_TABLE
    from cdp.feedback.dynamodb import DynamoDbReplyStore

    name = synth["names"].table(NOTICE_REPLIES_TABLE)
    (props,) = [
        t["Properties"]
        for t in _resources(synth["json"]["CdpDataPlane"], "AWS::DynamoDB::Table").values()
        if t["Properties"]["TableName"] == name
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["DeletionProtectionEnabled"] is True
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
        )
        store = DynamoDbReplyStore(client, name)
        store.issue("KXQM-TRPD", "ntc-1", ["t-1"])
        store.extend("ntc-1", ["t-2"])
        assert store.transactions("KXQM-TRPD") == ["t-1", "t-2"]
        assert store.answer_once("KXQM-TRPD", "not-me", datetime(2026, 1, 2, tzinfo=UTC))
        assert not store.answer_once("KXQM-TRPD", "me", datetime(2026, 1, 2, tzinfo=UTC))


def test_audit_table_is_retained_protected_encrypted_with_pitr_and_typed_like_the_adapter(synth) -> None:
    data = synth["json"]["CdpDataPlane"]
    (audit,) = [
        t for t in _resources(data, "AWS::DynamoDB::Table").values()
        if t["Properties"]["TableName"] == synth["names"].audit_table
    ]  # fmt: skip
    props = audit["Properties"]
    assert synth["names"].audit_table == "cdp-audit"  # CDP_AUDIT_TABLE's default
    assert props["AttributeDefinitions"] == [
        {"AttributeName": "log", "AttributeType": "S"},
        {"AttributeName": "seq", "AttributeType": "N"},
    ]
    assert props["DeletionProtectionEnabled"] is True
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    key_id = synth["stacks"].data.get_logical_id(synth["stacks"].data.key.node.default_child)
    assert props["SSESpecification"] == {
        "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    assert audit["DeletionPolicy"] == "Retain" and audit["UpdateReplacePolicy"] == "Retain"


def test_the_gate_and_drift_roles_may_only_append_to_the_audit_table(synth) -> None:
    from infra.audit_grants import AUDIT_APPEND_ACTIONS

    data = synth["stacks"].data
    audit_id = data.get_logical_id(data.audit_table.node.default_child)
    on_audit: dict[str, set[str]] = {}
    for where, statement in _iam_statements(synth):
        resources = [_flatten(r) for r in _as_list(statement["Resource"])]
        if not any(audit_id in r for r in resources):
            continue
        on_audit.setdefault(where, set()).update(_as_list(statement["Action"]))
    build = {where for where in on_audit if "BuildRole" in where}
    promote = {where for where in on_audit if "PromoteRole" in where}
    drift = {where for where in on_audit if where.startswith("CdpRuntime/JobsDriftJobRole")}
    # the two roles that run the gate, and the drift job, which switches or rejects challengers
    assert build and promote and len(drift) == 1 and set(on_audit) == build | promote | drift
    for where, actions in on_audit.items():
        assert actions == set(AUDIT_APPEND_ACTIONS), where
        assert not actions & {"dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"}


# -- ML platform ------------------------------------------------------------------------------------
def test_model_package_groups_and_execution_role(synth) -> None:
    ml = synth["json"]["CdpMlPlatform"]
    groups = {
        g["Properties"]["ModelPackageGroupName"]
        for g in _resources(ml, "AWS::SageMaker::ModelPackageGroup").values()
    }
    assert groups == {"cdp-fraud", "cdp-clv", "cdp-segmentation"} == set(model_package_groups())
    (role,) = _resources(ml, "AWS::IAM::Role").values()
    assert role["Properties"]["RoleName"] == "cdp-sagemaker-execution"
    principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "sagemaker.amazonaws.com"}


# -- monitoring loop --------------------------------------------------------------------------------
def test_every_drift_alarm_is_synthesised_with_the_same_definition(synth) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in _resources(synth["json"]["CdpMonitoringLoop"], "AWS::CloudWatch::Alarm").values()
    }
    expected = [alarm for model in PIPELINES for alarm in model_alarms(model)]
    assert len(expected) == 8  # feature drift and score PSI per model; labelled PR-AUC ratio for fraud
    assert "cdp-fraud-degraded-DegradedDecisions" in {alarm.name for alarm in expected}  # rules decided
    expected += slo_alarms(Objectives.from_settings(synth["settings"]).thresholds())
    assert len(expected) == 13  # + event-to-alert latency, API availability and p99, batch/stream freshness
    assert set(alarms) == {alarm.name for alarm in expected}
    for alarm in expected:
        props = alarms[alarm.name]
        assert props["Namespace"] == alarm.metric.namespace
        assert props["MetricName"] == alarm.metric.name
        assert {d["Name"]: d["Value"] for d in props["Dimensions"]} == dict(alarm.metric.dimensions)
        assert props["Statistic"] == alarm.metric.statistic.value
        assert props["Period"] == alarm.metric.period_seconds
        assert props["Threshold"] == alarm.threshold
        assert props["ComparisonOperator"] == alarm.comparison.value
        assert props["EvaluationPeriods"] == alarm.evaluation_periods
        assert props["DatapointsToAlarm"] == alarm.to_alarm
        assert props["TreatMissingData"] == alarm.treat_missing_data.value
    assert alarms["cdp-fraud-drift-ScorePSI"]["Threshold"] == 0.25
    ratio = alarms["cdp-fraud-drift-LabelledPrAucRatio"]
    assert (ratio["ComparisonOperator"], ratio["Threshold"]) == ("LessThanThreshold", 0.7)


def _rules(synth) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["Name"]: r["Properties"]
        for r in _resources(synth["json"]["CdpMonitoringLoop"], "AWS::Events::Rule").values()
    }


def test_every_loop_rule_has_exactly_the_same_pattern_or_schedule(synth) -> None:
    rules = _rules(synth)
    expected = loop_rules()
    assert set(rules) == {rule.name for rule, _ in expected}
    for rule, targets in expected:
        props = rules[rule.name]
        if rule.event_pattern is not None:
            assert props["EventPattern"] == json.loads(json.dumps(rule.event_pattern))
            assert "ScheduleExpression" not in props
        else:
            assert props["ScheduleExpression"] == rule.schedule_expression == "rate(7 days)"
            assert "EventPattern" not in props
        assert props["State"] == "ENABLED"
        assert [t["Id"] for t in props["Targets"]] == [t.id for t in targets]


def test_start_pipeline_targets_run_the_sagemaker_pipeline_with_the_target_parameters(synth) -> None:
    rules = _rules(synth)
    role_id = synth["stacks"].loop.get_logical_id(synth["stacks"].loop.targets_role.node.default_child)
    started = 0
    for rule, targets in loop_rules():
        for target, props in zip(targets, rules[rule.name]["Targets"], strict=True):
            if target.action != START_PIPELINE:
                continue
            started += 1
            arn = _flatten(props["Arn"])
            assert arn == (
                f"arn:<AWS::Partition>:sagemaker:eu-west-1:<AWS::AccountId>:pipeline/cdp-{target.parameters['pipeline']}"
            )
            assert props["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
            parameters = props["SageMakerPipelineParameters"]["PipelineParameterList"]
            assert {p["Name"]: p["Value"] for p in parameters} == {
                k: str(v) for k, v in target.parameters.items()
            }
    assert started == 6  # one per model on drift + three weekly


def test_promote_and_deploy_targets_start_their_codebuild_projects(synth) -> None:
    rules = _rules(synth)
    delivery = synth["stacks"].delivery
    project_ids = {
        PROMOTE_MODEL: delivery.get_logical_id(delivery.promote.node.default_child),
        DEPLOY_CHAMPION: delivery.get_logical_id(delivery.deploy.node.default_child),
    }
    seen = set()
    for rule, targets in loop_rules():
        for target, props in zip(targets, rules[rule.name]["Targets"], strict=True):
            if target.action not in project_ids:
                continue
            seen.add(target.action)
            exported = _export_source(synth, props["Arn"]["Fn::ImportValue"])
            assert exported == {"Fn::GetAtt": [project_ids[target.action], "Arn"]}
            transformer = props["InputTransformer"]
            assert transformer["InputPathsMap"] == {
                "group": "$.detail.ModelPackageGroupName",
                "package": "$.detail.ModelPackageArn",
            }
            overrides = json.loads(transformer["InputTemplate"])["environmentVariablesOverride"]
            values = {o["name"]: o["value"] for o in overrides}
            assert values["MODEL_NAME"] == "<group>" and values["MODEL_PACKAGE_ARN"] == "<package>"
            if target.action == PROMOTE_MODEL:
                assert values["CI_MODELS"] == "<group>"  # buildspec.yml gates the models of CI_MODELS
    assert seen == {PROMOTE_MODEL, DEPLOY_CHAMPION}


def test_events_role_may_only_start_the_loop_pipelines_and_builds(synth) -> None:
    loop = synth["json"]["CdpMonitoringLoop"]
    (policy,) = [
        p for k, p in _resources(loop, "AWS::IAM::ManagedPolicy").items()
        if not _is_boundary(synth, "CdpMonitoringLoop", k)
    ]  # fmt: skip
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    by_action = {s["Action"]: s["Resource"] for s in statements}
    assert set(by_action) == {"sagemaker:StartPipelineExecution", "codebuild:StartBuild"}
    assert sorted(
        _flatten(r).rsplit("/", 1)[1] for r in by_action["sagemaker:StartPipelineExecution"]
    ) == sorted(f"cdp-{p}" for p in PIPELINES.values())
    assert len(by_action["codebuild:StartBuild"]) == 2


# -- delivery ---------------------------------------------------------------------------------------
def test_pipeline_checks_out_through_the_connection_and_builds_with_buildspec(synth) -> None:
    delivery = synth["json"]["CdpDelivery"]
    (pipeline,) = _resources(delivery, "AWS::CodePipeline::Pipeline").values()
    stages = pipeline["Properties"]["Stages"]
    assert [s["Name"] for s in stages][:2] == [
        "Source",
        "Build",
    ]  # then the environments (test_infra_runtime)
    source = stages[0]["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == CONNECTION
    assert source["Configuration"]["FullRepositoryId"] == "bank/cdp-platform"
    assert source["Configuration"]["BranchName"] == "release"
    build = stages[1]["Actions"][0]
    assert build["ActionTypeId"]["Provider"] == "CodeBuild"
    build_id = synth["stacks"].delivery.get_logical_id(synth["stacks"].delivery.build.node.default_child)
    assert build["Configuration"]["ProjectName"] == {"Ref": build_id}
    projects = _resources(delivery, "AWS::CodeBuild::Project")
    assert "BuildSpec" not in projects[build_id]["Properties"]["Source"]  # buildspec.yml of the source


def test_promotion_project_runs_the_repository_buildspec_through_the_connection(synth) -> None:
    delivery = synth["stacks"].delivery
    props = synth["json"]["CdpDelivery"]["Resources"][
        delivery.get_logical_id(delivery.promote.node.default_child)
    ]["Properties"]
    assert props["Source"]["Type"] == "GITHUB"
    assert props["Source"]["Location"] == "https://github.com/bank/cdp-platform.git"
    assert props["Source"]["Auth"] == {"Type": "CODECONNECTIONS", "Resource": CONNECTION}
    assert "BuildSpec" not in props["Source"]
    assert props["SourceVersion"] == "release"
    env = {v["Name"]: v["Value"] for v in props["Environment"]["EnvironmentVariables"]}
    assert (
        env["CI_PIPELINES"].split() == []
    )  # promoting never starts the pipelines (no register/promote loop)
    assert "SAGEMAKER_ROLE_ARN" in env
    # the gate runs as the project's own role, which the role map makes a model-approver
    role_map = env["CDP_IAM_ROLE_MAP"]["Fn::Join"][1]
    assert role_map[0] == '{"' and role_map[2] == '": ["model-approver"]}'
    assert role_map[1] == {"Fn::GetAtt": [props["ServiceRole"]["Fn::GetAtt"][0], "Arn"]}
    for project in _resources(synth["json"]["CdpDelivery"], "AWS::CodeBuild::Project").values():
        assert "EncryptionKey" in project["Properties"]
        assert project["Properties"]["Environment"].get("PrivilegedMode") in (None, False)


def test_deploy_project_runs_the_deploy_step_with_the_key_on_the_checked_out_repository(synth) -> None:
    import yaml

    from infra.delivery import INSTALL_COMMANDS, UV_VERSION

    delivery = synth["stacks"].delivery
    props = synth["json"]["CdpDelivery"]["Resources"][
        delivery.get_logical_id(delivery.deploy.node.default_child)
    ]["Properties"]
    assert props["Source"]["Type"] == "GITHUB"
    assert props["Source"]["Auth"] == {"Type": "CODECONNECTIONS", "Resource": CONNECTION}
    spec = json.loads(props["Source"]["BuildSpec"])
    (command,) = spec["phases"]["build"]["commands"]
    assert command.startswith(
        '.venv/bin/python -m monitoring.deploy --model-package-arn "$MODEL_PACKAGE_ARN"'
    )
    for flag, variable in (("--role-arn", "EXECUTION_ROLE_ARN"), ("--kms-key", "KMS_KEY_ARN"),
                           ("--instance-type", "INSTANCE_TYPE")):  # fmt: skip
        assert f'{flag} "${variable}"' in command
    # installed exactly as buildspec.yml's install phase does
    buildspec = yaml.safe_load((Path(__file__).resolve().parent.parent / "buildspec.yml").read_text())
    venv = buildspec["env"]["variables"]["VENV"]
    expected = [c.replace("$VENV", venv) for c in buildspec["phases"]["install"]["commands"]]
    assert spec["phases"]["install"]["commands"] == INSTALL_COMMANDS == expected
    assert spec["env"]["variables"]["UV_VERSION"] == UV_VERSION == buildspec["env"]["variables"]["UV_VERSION"]
    env = {v["Name"]: v["Value"] for v in props["Environment"]["EnvironmentVariables"]}
    assert set(env) == {"EXECUTION_ROLE_ARN", "KMS_KEY_ARN", "INSTANCE_TYPE", "CDP_AWS_REGION"}
    assert env["CDP_AWS_REGION"] == "eu-west-1"


def test_deploy_project_may_scale_the_cdp_endpoints_only(synth) -> None:
    delivery = synth["stacks"].delivery
    role_id = delivery.get_logical_id(delivery.deploy.role.node.default_child)
    statements = [
        statement
        for resource in synth["json"]["CdpDelivery"]["Resources"].values()
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        and role_id in json.dumps(resource["Properties"].get("Roles", []))
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    by_action = {action: s for s in statements for action in as_list(s["Action"])}
    scaling = by_action["application-autoscaling:RegisterScalableTarget"]
    assert set(as_list(scaling["Action"])) == {
        "application-autoscaling:RegisterScalableTarget", "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:DeleteScalingPolicy", "application-autoscaling:DeregisterScalableTarget",
    }  # fmt: skip
    assert flatten(scaling["Resource"]).endswith(":scalable-target/*")
    alarms = by_action["cloudwatch:PutMetricAlarm"]
    assert flatten(alarms["Resource"]).endswith(":alarm:TargetTracking-endpoint/cdp-*")
    linked = by_action["iam:CreateServiceLinkedRole"]
    assert linked["Condition"] == {
        "StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}
    }
    assert "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in flatten(linked["Resource"])


# -- policy hygiene ---------------------------------------------------------------------------------
def _iam_statements(synth):
    for stack, template in synth["json"].items():
        for logical_id, resource in template["Resources"].items():
            documents = []
            if _is_boundary(synth, stack, logical_id):
                continue  # a cap, not a grant (test_every_role_has_the_stacks_permissions_boundary)
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                documents.append(resource["Properties"]["PolicyDocument"])
            if resource["Type"] == "AWS::IAM::Role":
                documents += [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
                # only the stack's own managed policies (their statements are checked here too), but
                # for the listed AWS-maintained service-role policies
                for arn in resource["Properties"].get("ManagedPolicyArns", []):
                    if set(arn) != {"Ref"} and _aws_managed_allowed(logical_id, arn):
                        continue
                    assert set(arn) == {"Ref"}, f"{stack}/{logical_id}: {arn}"
                    assert template["Resources"][arn["Ref"]]["Type"] == "AWS::IAM::ManagedPolicy"
            for document in documents:
                for statement in document["Statement"]:
                    yield f"{stack}/{logical_id}", statement


AWS_MANAGED_POLICIES = {
    "BackupRole": ("service-role/AWSBackup", "AWS Backup's backup and restore of DynamoDB and S3"),
    "CustomVpcRestrictDefaultSGCustomResourceProvider": (
        "service-role/AWSLambdaBasicExecutionRole",
        "the CDK provider emptying the default security group writes its own logs",
    ),
}
"""Roles (by logical id prefix) that may carry an AWS-managed policy (by name prefix), and why."""

CDK_INLINE_POLICIES = {
    "TrailLogsRole": "the CloudTrail construct's CloudWatch Logs delivery role (no way to pass a role)",
    "CustomVpcRestrictDefaultSGCustomResourceProvider": "the CDK's provider that empties the default SG",
}
"""Roles (by logical id prefix) made by CDK constructs with an inline policy, and why."""


def _aws_managed_allowed(logical_id: str, arn: Any) -> bool:
    text = arn.get("Fn::Sub") if isinstance(arn, dict) and "Fn::Sub" in arn else _flatten(arn)
    for role, (policy, _) in AWS_MANAGED_POLICIES.items():
        if logical_id.startswith(role) and text.split(":iam::aws:policy/", 1)[-1].startswith(policy):
            return True
    return False


def _is_boundary(synth, stack_name: str, logical_id: str) -> bool:
    from infra.roles import BOUNDARY_ID

    stack = next(s for s in synth["stacks"].all() if s.stack_name == stack_name)
    boundary = stack.node.try_find_child(BOUNDARY_ID)
    return boundary is not None and stack.get_logical_id(boundary.node.default_child) == logical_id


def test_no_wildcard_actions_and_star_resources_only_for_documented_actions(synth) -> None:
    star_grants = set()
    for where, statement in _iam_statements(synth):
        assert statement["Effect"] == "Allow", where
        actions = _as_list(statement["Action"])
        for action in actions:
            assert action != "*" and not action.endswith(":*"), f"{where}: {action}"
        if "*" in _as_list(statement["Resource"]):
            assert set(actions) <= set(STAR_RESOURCE_ACTIONS), f"{where}: {actions} on '*'"
            star_grants.update(actions)
    assert star_grants  # the check above ran on the statements that need it
    assert star_grants <= set(STAR_RESOURCE_ACTIONS)


def test_grants_are_managed_policies_of_one_role_and_every_role_has_the_boundary(synth) -> None:
    """No inline policies (PCI DSS 7.1.2); each grants policy is attached to exactly one role; every role
    (the CDK's own included) carries its stack's permissions boundary, which denies the guardrails."""
    from infra.roles import BOUNDARY_DENIED_ACTIONS, BOUNDARY_ID

    for stack in synth["stacks"].all():
        template = synth["json"][stack.stack_name]
        boundary_id = stack.get_logical_id(stack.node.find_child(BOUNDARY_ID).node.default_child)
        inline = _resources(template, "AWS::IAM::Policy")
        for logical_id in inline:
            assert any(logical_id.startswith(p) for p in CDK_INLINE_POLICIES), logical_id
        roles = _resources(template, "AWS::IAM::Role")
        assert roles, stack.stack_name
        for logical_id, role in roles.items():
            if not any(logical_id.startswith(p) for p in CDK_INLINE_POLICIES):
                assert not role["Properties"].get("Policies"), logical_id
            assert role["Properties"]["PermissionsBoundary"] == {"Ref": boundary_id}, logical_id
        for logical_id, policy in _resources(template, "AWS::IAM::ManagedPolicy").items():
            if logical_id == boundary_id:
                continue
            attached = policy["Properties"].get("Roles", [])
            referenced = [
                r
                for r in roles.values()
                if {"Ref": logical_id} in r["Properties"].get("ManagedPolicyArns", [])
            ]
            assert len(attached) + len(referenced) == 1, logical_id
        boundary = template["Resources"][boundary_id]["Properties"]["PolicyDocument"]["Statement"]
        (deny,) = [st for st in boundary if st["Effect"] == "Deny"]
        assert set(deny["Action"]) == set(BOUNDARY_DENIED_ACTIONS)
        assert {"iam:CreateRole", "cloudtrail:StopLogging", "kms:ScheduleKeyDeletion"} <= set(deny["Action"])


def _nag_report(synth, stack_name: str) -> list[dict[str, str]]:
    """cdk-nag's CSV report of one stack (written into the cloud assembly at synth)."""
    (path,) = synth["outdir"].glob(f"AwsSolutions-*{stack_name}-NagReport.csv")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_cdk_nag_ran_and_left_no_unsuppressed_finding(synth) -> None:
    from aws_cdk.assertions import Annotations, Match

    for name, stack in zip(synth["templates"], synth["stacks"].all(), strict=True):
        annotations = Annotations.from_stack(stack)
        assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == [], name
        assert annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")) == [], name
        rows = _nag_report(synth, name)
        assert rows, name
        assert {row["Compliance"] for row in rows} <= {"Compliant", "Suppressed", "N/A"}, name
        for row in rows:
            if row["Compliance"] == "Suppressed":
                assert len(row["Exception Reason"]) > 40, (name, row["Rule ID"])
    checked = {(row["Rule ID"], row["Compliance"]) for row in _nag_report(synth, "CdpDataPlane")}
    assert {
        ("AwsSolutions-S1", "Compliant"),
        ("AwsSolutions-S10", "Compliant"),
        ("AwsSolutions-KMS5", "Compliant"),
        ("AwsSolutions-DDB3", "Compliant"),
        ("AwsSolutions-KDS1", "Compliant"),
    } <= checked


# -- one set of names: what the stacks create is what the adapters address --------------------------
@pytest.fixture(scope="module")
def aws_adapters(synth):
    """Every AWS adapter, built by `Backends` from the settings the app was synthesised with (in moto:
    building the stream's checkpoints creates their table)."""
    from cdp.backends import Backends

    settings = synth["settings"].model_copy(update={"backend": "aws"})
    with mock_aws():
        backends = Backends(settings)
        return {
            "catalog": backends.catalog,
            "oltp": backends.oltp,
            "stream": backends.stream,
            "idempotency": backends.idempotency_index("lake-sink"),
            "online": backends.online_store,
            "api_keys": backends.api_keys,
            "data_keys": backends.data_keys,
            "erasure_requests": backends.erasure_requests,
            "reply_store": backends.reply_store,
            "audit_checkpoints": backends.audit_checkpoints,
            "audit": backends.audit,
            "keys": backends.keys,
            "event_bus": backends.event_bus,
            "registry": backends.model_registry,
            "endpoint": backends.scoring_endpoint(lambda: pytest.fail("AWS mode scores on the endpoint")),
            "card_verifier": backends.card_verifier,
        }


def test_every_table_the_stacks_create_is_the_table_an_adapter_uses(synth, aws_adapters) -> None:
    a = aws_adapters
    used = {
        *a["oltp"].table_names.values(),
        a["stream"]._checkpoints.table_name,
        a["idempotency"].table_name,
        a["online"].table,
        a["api_keys"].table,
        a["data_keys"].table_name,
        a["erasure_requests"].table_name,
        a["reply_store"].table_name,
        a["audit"].table,
    }
    created = {
        t["Properties"]["TableName"]
        for t in _resources(synth["json"]["CdpDataPlane"], "AWS::DynamoDB::Table").values()
    }
    assert created == used
    assert len(used) == len(table_specs()) + 1  # every spec'd table and the audit log's


def test_buckets_stream_catalog_workgroups_bus_key_and_endpoint_are_the_adapters_names(
    synth, aws_adapters
) -> None:
    a = aws_adapters
    data = synth["json"]["CdpDataPlane"]
    buckets = {b["Properties"].get("BucketName") for b in _resources(data, "AWS::S3::Bucket").values()}
    assert {a["registry"].bucket, a["audit_checkpoints"].bucket} <= buckets
    (stream,) = _resources(data, "AWS::Kinesis::Stream").values()
    assert stream["Properties"]["Name"] == a["stream"].stream_name
    (database,) = _resources(data, "AWS::Glue::Database").values()
    assert database["Properties"]["DatabaseInput"]["Name"] == a["catalog"].database
    workgroups = {
        w["Properties"]["Name"]: w["Properties"]["WorkGroupConfiguration"]
        for w in _resources(data, "AWS::Athena::WorkGroup").values()
    }
    catalog = a["catalog"]
    assert set(workgroups) == {catalog.workgroup, catalog.analyst_workgroup}
    assert catalog.workgroup == "cdp" != "primary"  # the platform's encrypted workgroup
    platform = workgroups[catalog.workgroup]["ResultConfiguration"]
    assert platform["OutputLocation"] == catalog.output_location
    (alias,) = _resources(data, "AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == a["keys"].key_id
    (cvk_alias,) = _resources(data, "AWS::PaymentCryptography::Alias").values()
    assert cvk_alias["Properties"]["AliasName"] == a["card_verifier"].key_arn
    rules = _resources(synth["json"]["CdpMonitoringLoop"], "AWS::Events::Rule").values()
    patterned = [r["Properties"] for r in rules if "EventPattern" in r["Properties"]]
    assert patterned
    assert {r.get("EventBusName", "default") for r in patterned} == {a["event_bus"].bus_name}
    # the deploy project names the endpoint after the model package group it deploys
    assert a["endpoint"].endpoint_name in model_package_groups()
    # (monitoring/deploy.py: the endpoint is the package's group unless --endpoint-name says otherwise)
    assert "--endpoint-name" not in " ".join(_deploy_commands(synth))


def _deploy_commands(synth) -> list[str]:
    delivery = synth["stacks"].delivery
    props = synth["json"]["CdpDelivery"]["Resources"][
        delivery.get_logical_id(delivery.deploy.node.default_child)
    ]["Properties"]
    return json.loads(props["Source"]["BuildSpec"])["phases"]["build"]["commands"]


# -- audit checkpoints and keys ---------------------------------------------------------------------
def test_audit_checkpoint_bucket_is_compliance_locked_versioned_kms_encrypted_and_private(synth) -> None:
    from infra.data_plane import AUDIT_CHECKPOINT_RETENTION_DAYS

    data = synth["json"]["CdpDataPlane"]
    (bucket,) = [
        b for b in _resources(data, "AWS::S3::Bucket").values()
        if b["Properties"].get("BucketName") == synth["names"].audit_checkpoint_bucket
    ]  # fmt: skip
    props = bucket["Properties"]
    assert synth["names"].audit_checkpoint_bucket == "cdp-audit-checkpoints"  # the setting's default
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": AUDIT_CHECKPOINT_RETENTION_DAYS}},
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    key_id = synth["stacks"].data.get_logical_id(synth["stacks"].data.key.node.default_child)
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
    }
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert bucket["DeletionPolicy"] == "Retain"


def _grants_on(synth, logical_id: str) -> dict[str, list[dict[str, Any]]]:
    """The statements naming `logical_id` in a resource, by the policy that holds them."""
    found: dict[str, list[dict[str, Any]]] = {}
    for where, statement in _iam_statements(synth):
        resources = [_flatten(r) for r in _as_list(statement["Resource"])]
        if any(logical_id in r for r in resources):
            found.setdefault(where, []).append(statement)
    return found


def test_the_roles_that_audit_may_put_get_and_list_checkpoints_and_delete_none(synth) -> None:
    data = synth["stacks"].data
    bucket_id = data.get_logical_id(data.audit_checkpoints.node.default_child)
    grants = _grants_on(synth, bucket_id)
    # the promotion gate's two roles, and the drift job's (it switches or rejects challengers)
    auditors = ("BuildRole", "PromoteRole", "JobsDriftJobRole")
    assert set(auditors) == {role for where in grants for role in auditors if role in where}
    assert all(any(role in where for role in auditors) for where in grants)
    for where, statements in grants.items():
        actions = {a for s in statements for a in _as_list(s["Action"])}
        assert actions == {"s3:PutObject", "s3:GetObject", "s3:ListBucket"}, where
        for statement in statements:
            (resource,) = (_flatten(r) for r in _as_list(statement["Resource"]))
            if statement["Action"] == "s3:ListBucket":  # the bucket, listed under the prefix only
                assert resource.endswith(">"), (where, resource)
                assert statement["Condition"] == {"StringLike": {"s3:prefix": ["audit-checkpoints/*"]}}
            else:  # the checkpoint objects only
                assert resource.endswith(">/audit-checkpoints/*"), (where, resource)


def test_the_roles_that_audit_may_read_only_the_audit_key_entries_and_unwrap_them(synth) -> None:
    from cdp.security.audit.keys import AUDIT_KEY_IDS, AUDIT_KEY_USES
    from infra.table_specs import DATA_KEYS_TABLE

    data = synth["stacks"].data
    table_id = data.get_logical_id(data.tables[DATA_KEYS_TABLE].node.default_child)
    grants = _grants_on(synth, table_id)
    assert {where.split("/")[0] for where in grants} == {"CdpDelivery", "CdpRuntime"}
    assert any("BuildRole" in w for w in grants) and any("PromoteRole" in w for w in grants)
    # in the runtime, only the drift job, which audits the challenger switches it decides
    assert [w for w in grants if w.startswith("CdpRuntime/")] == [
        w for w in grants if w.startswith("CdpRuntime/JobsDriftJobRole")
    ]
    for where, statements in grants.items():
        (statement,) = statements
        assert statement["Action"] == "dynamodb:GetItem", where
        leading = statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
        assert sorted(leading) == sorted(AUDIT_KEY_IDS)
    unwraps = [
        s for _, s in _iam_statements(synth) if s.get("Sid") == "AuditKeyUnwrap"
    ]  # fmt: skip
    assert len(unwraps) == 3  # the build, the promotion, the drift job
    for statement in unwraps:
        assert statement["Action"] == "kms:Decrypt"
        assert sorted(statement["Condition"]["StringEquals"]["kms:EncryptionContext:use"]) == sorted(
            AUDIT_KEY_USES
        )
