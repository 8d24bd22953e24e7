"""The CDK app synthesised once per test process (both packs run), shared by the infra test modules."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from cdp.aws_resources import AwsResources

CONNECTION = "arn:aws:codeconnections:eu-west-1:123456789012:connection/0a1b2c3d"
STAGING, PROD = "111111111111", "222222222222"
PROD_DR_VAULT = f"arn:aws:backup:eu-central-1:{PROD}:backup-vault:cdp-dr"
CONTEXT = {
    "connectionArn": CONNECTION,
    "repository": "bank/cdp-platform",
    "branch": "release",
    "stagingAccount": STAGING,
    "prodAccount": PROD,
    "prodDrBackupVaultArn": PROD_DR_VAULT,
}


@functools.cache
def synthesised() -> dict[str, Any]:
    """Stacks, templates (as dicts and as `Template`), the assembly folder, names and settings."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from cdp.settings import Settings
    from infra.app import DEFAULT_CONTEXT, build_stacks

    outdir = Path(tempfile.mkdtemp(prefix="cdk.out-"))
    settings = Settings(home=outdir / "home", lake_bucket="cdp-lake-test", aws_region="eu-west-1")
    app = cdk.App(context={**DEFAULT_CONTEXT, **CONTEXT}, outdir=str(outdir))
    stacks = build_stacks(app, settings)
    assembly = app.synth()
    templates = {s.stack_name: Template.from_stack(s) for s in stacks.all()}
    return {
        "stacks": stacks,
        "templates": templates,
        "json": {name: t.to_json() for name, t in templates.items()},
        "outdir": Path(assembly.directory),
        "names": AwsResources.from_settings(settings),
        "settings": settings,
    }


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The template's resources of CloudFormation type `kind`, by logical id."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def flatten(value: Any) -> str:
    """An ARN built with Fn::Join as text, references as <Ref> / <Logical.Attr> / <import:Name>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(flatten(p) for p in parts)
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return value["Fn::Sub"]
    if "Fn::ImportValue" in value:
        return f"<import:{value['Fn::ImportValue']}>"
    raise AssertionError(f"unexpected intrinsic {value}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
