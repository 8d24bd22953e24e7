"""The dashboards' QuickSight data source and datasets in the data plane stack, built from the one
definition (`dashboards/quicksight.json`), and the data source's role (least privilege)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra_synth import as_list, flatten, resources, synthesised


@pytest.fixture(scope="module")
def synth():
    return synthesised()


def _data_plane(synth) -> dict[str, Any]:
    return synth["json"]["CdpDataPlane"]


def _committed_definition(region: str) -> dict[str, Any]:
    """`dashboards/quicksight.json` with its substitutions as the synthesised template renders them."""
    from dashboards.quicksight import DEFINITION_FILE

    text = DEFINITION_FILE.read_text().replace("${AWS::Region}", region)
    return json.loads(text.replace("${AWS::AccountId}", "<AWS::AccountId>"))


def _rendered(value: Any) -> Any:
    """A template value with its strings and `Fn::Join`s as text (see `flatten`)."""
    if isinstance(value, list):
        return [_rendered(v) for v in value]
    if isinstance(value, dict) and not ({"Fn::Join", "Ref", "Fn::GetAtt"} & set(value)):
        return {k: _rendered(v) for k, v in value.items()}
    return flatten(value) if isinstance(value, (str, dict)) else value


def test_the_data_source_is_athena_in_the_platform_workgroup_as_its_own_role(synth) -> None:
    from dashboards.quicksight import QUICKSIGHT_ROLE

    template = _data_plane(synth)
    definition = _committed_definition("eu-west-1")["DataSource"]
    (source,) = resources(template, "AWS::QuickSight::DataSource").values()
    props = source["Properties"]
    assert props["Type"] == "ATHENA" == definition["Type"]
    assert props["DataSourceId"] == definition["DataSourceId"] and props["Name"] == definition["Name"]
    assert flatten(props["AwsAccountId"]) == "<AWS::AccountId>"
    athena = props["DataSourceParameters"]["AthenaParameters"]
    (workgroup_id, workgroup) = next(
        (k, w) for k, w in resources(template, "AWS::Athena::WorkGroup").items()
        if w["Properties"]["Name"] == synth["names"].workgroup
    )  # fmt: skip
    assert athena["WorkGroup"] == workgroup["Properties"]["Name"] == "cdp"
    assert workgroup_id in source["DependsOn"]
    roles = {
        r["Properties"]["RoleName"]: (k, r) for k, r in resources(template, "AWS::IAM::Role").items()
        if "RoleName" in r["Properties"]
    }  # fmt: skip
    role_id, role = roles[QUICKSIGHT_ROLE]
    assert flatten(athena["RoleArn"]) == f"arn:aws:iam::<AWS::AccountId>:role/{QUICKSIGHT_ROLE}"
    assert role_id in source["DependsOn"]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "quicksight.amazonaws.com"}
    assert props["SslProperties"] == {"DisableSsl": False}


def test_one_dataset_per_aggregate_table_as_the_definition_says(synth) -> None:
    from dashboards.quicksight import DATASETS

    template = _data_plane(synth)
    definition = _committed_definition("eu-west-1")
    expected = {d["Name"]: d for d in definition["DataSets"]}
    (source_id,) = resources(template, "AWS::QuickSight::DataSource")
    data_sets = {d["Properties"]["Name"]: d for d in resources(template, "AWS::QuickSight::DataSet").values()}
    assert set(data_sets) == set(DATASETS) == set(expected)
    source_arn = (
        f"arn:aws:quicksight:eu-west-1:<AWS::AccountId>:datasource/{definition['DataSource']['DataSourceId']}"
    )
    for name, data_set in data_sets.items():
        props, body = data_set["Properties"], expected[name]
        assert props["ImportMode"] == body["ImportMode"] and props["ImportMode"] in ("SPICE", "DIRECT_QUERY")
        assert props["DataSetId"] == body["DataSetId"]
        assert _rendered(props["PhysicalTableMap"]) == body["PhysicalTableMap"], name
        (table,) = props["PhysicalTableMap"].values()
        relational = table["RelationalTable"]
        assert flatten(relational["DataSourceArn"]) == source_arn
        assert relational["Schema"] == "cdp" and relational["Name"] == name
        assert _rendered(props["Permissions"]) == body["Permissions"], name
        assert {"Key": "cdp:page", "Value": DATASETS[name][0]} in props["Tags"]
        assert source_id in as_list(data_set["DependsOn"])


def test_the_quicksight_role_reads_the_aggregates_only_through_the_workgroup(synth) -> None:
    from infra.quicksight import CATALOG_ACTIONS, GLUE_READ_ACTIONS, WORKGROUP_ACTIONS

    template = _data_plane(synth)
    (role_id,) = [
        k for k, r in resources(template, "AWS::IAM::Role").items()
        if r["Properties"].get("RoleName") == "cdp-quicksight-athena"
    ]  # fmt: skip
    (policy,) = [
        p for p in resources(template, "AWS::IAM::ManagedPolicy").values()
        if {"Ref": role_id} in p["Properties"].get("Roles", [])
    ]  # fmt: skip
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert {sid: set(as_list(s["Action"])) for sid, s in statements.items()} == {
        "PlatformWorkgroup": set(WORKGROUP_ACTIONS),
        "AthenaCatalog": set(CATALOG_ACTIONS),
        "AggregateTables": set(GLUE_READ_ACTIONS),
        "AggregateObjects": {"s3:GetObject"},
        "QueryResults": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"},
        "LakeList": {"s3:ListBucket"},
        "LakeLocation": {"s3:GetBucketLocation"},
        "PlatformKeyThroughS3AndGlue": {"kms:Decrypt", "kms:GenerateDataKey"},
    }

    def rendered(sid: str) -> list[str]:
        return [flatten(r) for r in as_list(statements[sid]["Resource"])]

    assert [r.rsplit(":", 1)[1] for r in rendered("PlatformWorkgroup")] == ["workgroup/cdp"]
    assert rendered("AggregateTables")[-1].endswith(":table/cdp/dash_*")
    assert [r.rsplit(">/", 1)[1] for r in rendered("AggregateObjects")] == ["dashboards/*"]
    assert [r.rsplit(">/", 1)[1] for r in rendered("QueryResults")] == ["_athena-results/*"]
    assert statements["LakeList"]["Condition"] == {
        "StringLike": {"s3:prefix": ["dashboards/*", "_athena-results/*"]}
    }
    key = statements["PlatformKeyThroughS3AndGlue"]
    assert key["Condition"] == {
        "StringEquals": {"kms:ViaService": ["s3.eu-west-1.amazonaws.com", "glue.eu-west-1.amazonaws.com"]}
    }
    assert all("*" != r for s in statements.values() for r in as_list(s["Resource"]))


def test_an_account_without_quicksight_can_leave_it_out() -> None:
    import aws_cdk as cdk

    from cdp.aws_resources import AwsResources
    from cdp.settings import Settings
    from infra.data_plane import DataPlaneStack

    names = AwsResources.from_settings(Settings(lake_bucket="cdp-lake-test", aws_region="eu-west-1"))
    app = cdk.App()
    stack = DataPlaneStack(app, "Plain", names=names, quick_sight=False)
    template = app.synth().get_stack_by_name("Plain").template
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert not {k for k in kinds if k.startswith("AWS::QuickSight::")} and stack.quick_sight is None
    assert "AWS::Athena::WorkGroup" in kinds
