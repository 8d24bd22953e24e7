"""Console scripts, like AWS's project templates: `get-pipeline-definition` and `run-pipeline`.

get-pipeline-definition --pipeline fraud            # prints the definition JSON (offline)
run-pipeline --pipeline fraud --local               # runs it here with the local executor
run-pipeline --pipeline fraud --local --from-step Train  # reruns from Train, reusing the last Preprocess
run-pipeline --pipeline fraud --local --parameter MaxDepth=4 --parameter Eta=0.05  # a variant
run-pipeline --pipeline fraud --role <arn>          # upserts and starts it on SageMaker
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.models import PIPELINES
from pipelines.run import run_local_pipeline


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pipeline", required=True, choices=PIPELINES, help="which model's pipeline")
    parser.add_argument("--bucket", help="S3 bucket for code and outputs (default: the lake bucket)")
    parser.add_argument("--region", help="AWS region (default: the platform's aws_region setting)")
    parser.add_argument("--scripts-dir", type=Path, help="step scripts folder (default: training/<model>/)")


def _parameters(pairs: Sequence[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--parameter expects Name=Value, got {name or pair!r}")
        values[name] = value
    return values


def get_pipeline_definition_main(argv: Sequence[str] | None = None) -> int:
    """Print a pipeline's definition JSON. Needs no AWS account or network."""
    from cdp.settings import get_settings
    from pipelines.definition import OFFLINE_ROLE, build_definition

    parser = argparse.ArgumentParser(prog="get-pipeline-definition", description=__doc__.splitlines()[0])
    _common(parser)
    parser.add_argument("--role", default=OFFLINE_ROLE, help="execution role ARN written into the definition")
    args = parser.parse_args(argv)
    settings = get_settings()
    definition = build_definition(
        args.pipeline,
        bucket=args.bucket or settings.lake_bucket,
        region=args.region or settings.aws_region,
        role=args.role,
        scripts_dir=args.scripts_dir,
        inference_image=settings.inference_image_uri,
    )
    print(json.dumps(definition, indent=2))
    return 0


def _run_local(args: argparse.Namespace, parameters: dict[str, str]) -> int:
    from cdp.backends import Backends
    from cdp.security.errors import AccessDenied, NotAuthenticated
    from cdp.security.identity.authorize import authorize
    from pipelines.local import ExecutorError

    backends = Backends()
    # this process registers the model versions: it needs a role that may, and is recorded as their registrant
    try:
        caller = authorize(backends.identity, backends.audit, "model-register")
    except (AccessDenied, NotAuthenticated) as e:
        print(f"refused: {e}", file=sys.stderr)
        return 3
    try:
        record, run_dir = run_local_pipeline(
            args.pipeline,
            backends,
            registered_by=caller.id,
            parameters=parameters,
            use_cache=not args.no_cache,
            scripts_dir=args.scripts_dir,
            bucket=args.bucket,
            region=args.region,
            progress=lambda line: print(line, flush=True),
            from_step=args.from_step,
        )
    except ExecutorError as e:  # before any step ran: an unknown step or parameter, no run to reuse
        print(f"run-pipeline: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(f"execution {record.execution_id}: {record.status}")
    if record.failure_reason:
        print(record.failure_reason, file=sys.stderr)
    print(f"run record: {run_dir / 'run.json'}")
    return 0 if record.status == "Succeeded" else 1


def _run_on_sagemaker(args: argparse.Namespace, parameters: dict[str, str]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from cdp.settings import get_settings
    from pipelines.sagemaker_run import PipelineRunError, upsert_and_start

    if not args.role:
        raise SystemExit("--role (the SageMaker execution role ARN) is required to run on SageMaker")
    settings = get_settings()
    try:
        started = upsert_and_start(
            args.pipeline,
            role=args.role,
            bucket=args.bucket or settings.lake_bucket,
            settings=settings,
            region=args.region or settings.aws_region,
            parameters=parameters,
            scripts_dir=args.scripts_dir,
            inference_image=settings.inference_image_uri,
        )
    except (PipelineRunError, ClientError, BotoCoreError) as e:
        print(f"run-pipeline: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(f"started {started.execution_arn}")
    return 0


def run_pipeline_main(argv: Sequence[str] | None = None) -> int:
    """Upsert and start a pipeline on SageMaker, or (`--local`) run the same definition here."""
    parser = argparse.ArgumentParser(prog="run-pipeline", description=run_pipeline_main.__doc__)
    _common(parser)
    parser.add_argument("--local", action="store_true", help="run with the local executor")
    parser.add_argument("--role", help="SageMaker execution role ARN (required without --local)")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter override (repeatable)",
    )
    parser.add_argument("--no-cache", action="store_true", help="local: ignore the step cache")
    parser.add_argument(
        "--from-step",
        metavar="STEP",
        help="local: rerun from this step, reusing the upstream steps' outputs of the latest run with them",
    )
    args = parser.parse_args(argv)
    parameters = _parameters(args.parameter)
    if args.from_step and not args.local:
        raise SystemExit("--from-step runs with --local only")
    return _run_local(args, parameters) if args.local else _run_on_sagemaker(args, parameters)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_pipeline_main())
