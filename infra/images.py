"""The container images the stacks deploy, built by `cdk deploy` from the repository (synth only stages
their build context into the cloud assembly; no Docker runs at synth):

- `lambda_code(handler)`: the Lambda image (`infra/images/lambda.Dockerfile`) with `handler` as command;
- `job_image`: the Batch job image (`infra/images/jobs.Dockerfile`, entry point `cdp`);
- `serving_image`: the inference image SageMaker serves (`inference/Dockerfile`, target `serving`).
Each build context is the repository root restricted to the folders the image copies.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_DOCKERFILE = "infra/images/lambda.Dockerfile"
JOBS_DOCKERFILE = "infra/images/jobs.Dockerfile"
SERVING_DOCKERFILE = "inference/Dockerfile"
LAMBDA_PACKAGES = ("cdp", "features", "training", "inference")
JOB_PACKAGES = (*LAMBDA_PACKAGES, "pipelines", "monitoring", "app")
PLATFORM = ecr_assets.Platform.LINUX_AMD64


def _context(packages: tuple[str, ...], dockerfile: str) -> list[str]:
    """Docker-ignore patterns: everything but the lock, `packages` and `dockerfile`; no caches."""
    keep = ["requirements.lock", *packages, dockerfile]
    return ["*", *(f"!{path}" for path in keep), "**/__pycache__", "**/*.pyc"]


def _check(dockerfile: str) -> str:
    if not (ROOT / dockerfile).is_file():
        raise ValueError(f"missing image definition {dockerfile!r} (the image cannot be built)")
    return dockerfile


def lambda_code(handler: str) -> lambda_.DockerImageCode:
    """The Lambda image running `handler` (`module.function`)."""
    return lambda_.DockerImageCode.from_image_asset(
        str(ROOT),
        file=_check(LAMBDA_DOCKERFILE),
        exclude=_context(LAMBDA_PACKAGES, LAMBDA_DOCKERFILE),
        ignore_mode=IgnoreMode.DOCKER,
        cmd=[handler],
        platform=PLATFORM,
    )


def job_image(scope: Construct, construct_id: str) -> ecr_assets.DockerImageAsset:
    """The job image (`python -m app <command>`)."""
    return ecr_assets.DockerImageAsset(
        scope,
        construct_id,
        directory=str(ROOT),
        file=_check(JOBS_DOCKERFILE),
        exclude=_context(JOB_PACKAGES, JOBS_DOCKERFILE),
        ignore_mode=IgnoreMode.DOCKER,
        platform=PLATFORM,
    )


def serving_image(scope: Construct, construct_id: str) -> ecr_assets.DockerImageAsset:
    """The inference image (SageMaker bring-your-own-container, `serve`)."""
    return ecr_assets.DockerImageAsset(
        scope,
        construct_id,
        directory=str(ROOT),
        file=_check(SERVING_DOCKERFILE),
        exclude=_context(LAMBDA_PACKAGES, SERVING_DOCKERFILE),
        ignore_mode=IgnoreMode.DOCKER,
        target="serving",
        platform=PLATFORM,
    )
