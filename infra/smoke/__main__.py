"""`python -m infra.smoke [--dry-run]`: the AWS sandbox smoke run (`make aws-smoke`).

Checks the caller (STS) and the CDK stacks' resources, uploads a small generated slice, runs one small
pipeline (a throw-away copy of segmentation) through `run-pipeline`'s code, waits for it, lists, promotes
and approves the registered version through the registry commands and the promotion gate, deploys it to a
one-instance endpoint, invokes it with a few rows, and deletes everything it created (tagged
`cdp:smoke=<run id>`) in a `finally`. `--dry-run` prints the plan and performs only the read-only checks.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence
from dataclasses import replace

from botocore.exceptions import BotoCoreError, ClientError

from cdp.aws_resources import AwsResources
from infra.smoke.checks import SmokeError, caller_identity, check_resources, execution_role_arn
from infra.smoke.clients import Clients
from infra.smoke.ledger import SMOKE_TAG, Ledger
from infra.smoke.steps import SMOKE_INSTANCE, SMOKE_MODEL, smoke_spec


def _say(line: str) -> None:
    print(line, flush=True)


def plan(run_id: str, names: AwsResources) -> list[str]:
    """What a real run does, in order."""
    spec = smoke_spec(run_id)
    return [
        f"smoke run {run_id} in {names.region} (everything created is tagged {SMOKE_TAG}={run_id})",
        "1. check the caller (sts:GetCallerIdentity) and the stacks' resources (read-only)",
        f"2. upload a generated {SMOKE_MODEL} slice to s3://{names.lake_bucket}/_smoke/{run_id}/ "
        "and catalog it (Glue)",
        f"3. upsert + start pipeline {spec.pipeline_name} (group {spec.model_package_group}) on "
        f"{SMOKE_INSTANCE}; wait for it",
        "4. cdp models list; cdp promote (approve by hand when the gate cannot decide)",
        f"5. model, endpoint config and endpoint {spec.pipeline_name} from the approved package; invoke it",
        "6. delete what this run created and tagged (endpoint, config, model, pipeline, group, table, "
        "objects)",
    ]


def _real_run(clients: Clients, ledger: Ledger, names: AwsResources, settings, args, identity) -> None:
    from infra.smoke import registry_steps, steps

    role = execution_role_arn(clients)
    _say("upload slice")
    table = steps.upload_slice(clients, ledger, names.lake_bucket, args.rows, args.seed)
    _say(f"  s3://{names.lake_bucket}/_smoke/{ledger.run_id}/ catalogued as {table}")
    _say("run pipeline")
    pipeline, execution = steps.start_pipeline(
        clients, ledger, role=role, bucket=names.lake_bucket, table=table
    )
    _say(f"  {pipeline}: {execution}")
    status = steps.wait_for_execution(clients, execution, _say, timeout_seconds=args.timeout_minutes * 60)
    if status != "Succeeded":
        raise SmokeError(f"pipeline execution {execution} ended {status}")
    group = smoke_spec(ledger.run_id).model_package_group
    backends = registry_steps.aws_backends(settings)
    _say("registry")
    registry_steps.list_versions(backends, group, _say)
    version = registry_steps.promote_newest(backends, group, identity["arn"], ledger.run_id, _say)
    _say("endpoint")
    endpoint = steps.deploy_endpoint(
        clients, ledger, package=steps.package_arn(clients, group, version), role=role
    )
    answer = steps.invoke_endpoint(clients, endpoint, rows=3, seed=args.seed)
    _say(f"  {endpoint} answered: {str(answer)[:300]}")


def run(args: argparse.Namespace) -> int:
    """The smoke run (or its dry run); 0 when every step passed and everything created was removed."""
    from cdp.settings import get_settings

    settings = get_settings()
    clients = Clients(args.region or settings.aws_region, settings)
    names = replace(AwsResources.from_settings(settings), region=clients.region)
    ledger = Ledger(run_id=args.run_id or secrets.token_hex(4))
    for line in plan(ledger.run_id, names):
        _say(line)
    code = 1
    try:
        identity = caller_identity(clients)
        _say(f"caller {identity['arn']} (account {identity['account']})")
        check_resources(clients, names, _say)
        if args.dry_run:
            _say("dry run: checks passed, nothing created")
        else:
            _real_run(clients, ledger, names, settings, args, identity)
            _say("smoke run passed")
        code = 0
    except (SmokeError, ClientError, BotoCoreError, LookupError) as e:
        print(f"aws-smoke: {' '.join(str(e).split())}", file=sys.stderr)
    finally:
        problems = []
        if ledger.created:
            _say("clean up")
            problems = ledger.clean_up(clients, _say)
            for problem in problems:
                print(f"aws-smoke: clean-up failed for {problem}", file=sys.stderr)
    return 1 if problems else code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the plan and run the read-only checks")
    parser.add_argument("--region", help="AWS region (default: the platform's aws_region setting)")
    parser.add_argument("--run-id", help="tag value of this run (default: random)")
    parser.add_argument("--rows", type=int, default=600, help="customers in the generated slice")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout-minutes", type=float, default=60.0, help="longest wait for the pipeline")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
