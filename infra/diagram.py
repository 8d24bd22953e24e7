"""A mermaid picture of the deployed architecture, generated from the synthesised templates.

One box per stack listing its key resources (by type, counted), and one arrow per cross-stack reference
(`Fn::ImportValue`: the importing stack uses something the exporting stack owns), labelled with what is
used. `python -m infra.diagram [-c key=value ...]` synthesises the app and prints the picture;
`--readme README.md` writes it over the README's copy instead (the `flowchart LR` mermaid block after
`README_ANCHOR`; a test holds that copy equal to the picture of the tested context).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

KEY_TYPES = {
    "AWS::KMS::Key": "KMS key",
    "AWS::S3::Bucket": "S3 bucket",
    "AWS::DynamoDB::Table": "DynamoDB table",
    "AWS::Kinesis::Stream": "Kinesis stream",
    "AWS::Athena::WorkGroup": "Athena workgroup",
    "AWS::Glue::Database": "Glue database",
    "AWS::SageMaker::ModelPackageGroup": "model package group",
    "AWS::CodePipeline::Pipeline": "CodePipeline",
    "AWS::CodeBuild::Project": "CodeBuild project",
    "AWS::CloudWatch::Alarm": "CloudWatch alarm",
    "AWS::Events::Rule": "EventBridge rule",
    "AWS::Scheduler::Schedule": "Scheduler schedule",
    "AWS::CloudTrail::Trail": "CloudTrail trail",
    "AWS::SNS::Topic": "SNS topic",
    "AWS::Backup::BackupPlan": "Backup plan",
    "AWS::Backup::BackupVault": "Backup vault",
    "AWS::QuickSight::DataSource": "QuickSight data source",
    "AWS::QuickSight::DataSet": "QuickSight dataset",
    "AWS::EC2::VPC": "VPC",
    "AWS::EC2::VPCEndpoint": "VPC endpoint",
    "AWS::Lambda::Function": "Lambda function",
    "AWS::Lambda::EventSourceMapping": "event source",
    "AWS::SQS::Queue": "SQS queue",
    "AWS::ApiGatewayV2::Api": "HTTP API",
    "AWS::Batch::JobQueue": "Batch queue",
    "AWS::Batch::JobDefinition": "Batch job",
    "AWS::PaymentCryptography::Key": "Payment Cryptography key",
}
"""The resource types drawn (others, such as roles and policies, are left out of the picture)."""

_EXPORT = re.compile(r"^(?P<stack>[^:]+):ExportsOutput(?:Ref|FnGetAtt)(?P<what>[A-Za-z]+?)[0-9A-F]{8}")


def _imports(node: Any) -> list[str]:
    if isinstance(node, dict):
        if set(node) == {"Fn::ImportValue"} and isinstance(node["Fn::ImportValue"], str):
            return [node["Fn::ImportValue"]]
        return [name for value in node.values() for name in _imports(value)]
    if isinstance(node, list):
        return [name for value in node for name in _imports(value)]
    return []


def _what(export: str) -> str:
    """A readable name of what an export is (`...FnGetAttLake5F1B88EAArn...` -> `Lake`)."""
    match = _EXPORT.match(export)
    name = match.group("what") if match else export
    name = re.sub(r"(Arn|StreamArn|Name|KeyId)$", "", name)
    if name.startswith("Table") and name != "Table":
        return "Tables"
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).strip() or export


def mermaid(templates: Mapping[str, Mapping[str, Any]]) -> str:
    """The picture of `templates` (stack name -> template)."""
    lines = ["flowchart LR"]
    for stack, template in templates.items():
        counts = Counter(
            KEY_TYPES[r["Type"]] for r in template.get("Resources", {}).values() if r["Type"] in KEY_TYPES
        )
        items = "<br/>".join(f"{n} × {kind}" if n > 1 else kind for kind, n in sorted(counts.items()))
        lines.append(f'    {stack}["<b>{stack}</b><br/>{items}"]')
    edges: dict[tuple[str, str], set[str]] = {}
    for stack, template in templates.items():
        for export in _imports(template.get("Resources", {})):
            match = _EXPORT.match(export)
            if match and match.group("stack") in templates:
                edges.setdefault((stack, match.group("stack")), set()).add(_what(export))
    for (user, owner), used in sorted(edges.items()):
        lines.append(f'    {user} -->|"{", ".join(sorted(used))}"| {owner}')
    return "\n".join(lines) + "\n"


README_ANCHOR = "`python -m infra.diagram"  # the README's picture is the first block after this text
_FENCE_OPEN = "```mermaid\nflowchart LR\n"
_FENCE_CLOSE = "```\n"


def readme_span(readme: str) -> tuple[int, int]:
    """Where the picture is in the README's text: (start, end) of the lines between its fences."""
    anchor = readme.find(README_ANCHOR)
    opening = readme.find(_FENCE_OPEN, anchor) if anchor >= 0 else -1
    if opening < 0:
        raise ValueError(f"no ```mermaid flowchart LR block after {README_ANCHOR!r} in the README")
    start = opening + len("```mermaid\n")
    end = readme.find(_FENCE_CLOSE, start)
    if end < 0:
        raise ValueError("the README's architecture picture has no closing fence")
    return start, end


def readme_picture(readme: str) -> str:
    """The README's copy of the picture."""
    start, end = readme_span(readme)
    return readme[start:end]


def with_picture(readme: str, picture: str) -> str:
    """The README's text with `picture` in place of its copy (nothing else changed)."""
    start, end = readme_span(readme)
    return readme[:start] + picture + readme[end:]


def main(argv: list[str] | None = None) -> None:
    from pathlib import Path

    from infra.app import build_app

    parser = argparse.ArgumentParser(prog="python -m infra.diagram", description=__doc__)
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--readme", type=Path, help="write the picture into this README instead")
    args = parser.parse_args(argv)
    app, stacks = build_app(dict(item.split("=", 1) for item in args.context))
    assembly = app.synth()
    templates = {s.stack_name: assembly.get_stack_by_name(s.stack_name).template for s in stacks.all()}
    picture = mermaid(templates)
    if args.readme is None:
        print(picture, end="")
    else:
        args.readme.write_text(
            with_picture(args.readme.read_text(encoding="utf-8"), picture), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
