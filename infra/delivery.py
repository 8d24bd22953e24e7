"""Delivery: the CodePipeline of the repository (source -> build with `buildspec.yml`), the promotion
project the loop starts when a version is registered, and the deploy project it starts on approval.

The source is a CodeConnections (CodeStar) connection to the Git host; the promotion project checks out
the same repository through it and runs its `buildspec.yml` (the promotion runs in `post_build`). Both
event-started projects receive the model package of the event as environment variables
`MODEL_NAME` (its group, e.g. `cdp-fraud`) and `MODEL_PACKAGE_ARN`; the promotion project also gets
`CI_MODELS` = that group, and `CI_PIPELINES` blank so that promoting never starts the pipelines again
(a registration would otherwise start a run that registers again, without end).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdp.aws_resources import ATHENA_RESULTS_PREFIX, ATHENA_WORKGROUP, GLUE_DATABASE
from infra.audit_grants import (
    CHECKPOINT_OBJECTS_FINDING,
    CHECKPOINT_OBJECTS_REASON,
    AuditResources,
    grant_audit,
)
from infra.images import serving_image
from infra.nag_rules import suppress, suppress_no_replication
from infra.recovery import DR_VAULT_CONTEXT, ENVIRONMENT_CONTEXT, PROD
from infra.roles import PlatformRole

BUILDSPEC = "buildspec.yml"
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0


@dataclass(frozen=True)
class SourceRepository:
    """The Git repository behind a CodeConnections connection (`owner/name` on GitHub)."""

    connection_arn: str
    owner: str
    name: str
    branch: str = "main"

    @classmethod
    def parse(cls, connection_arn: str, repository: str, branch: str = "main") -> SourceRepository:
        owner, _, name = repository.partition("/")
        if not connection_arn or not owner or not name or "/" in name:
            raise ValueError("give the connection ARN and the repository as owner/name")
        return cls(connection_arn, owner, name, branch)


@dataclass(frozen=True)
class DeployTarget:
    """An account the pipeline deploys the app to (bootstrapped with `cdk bootstrap --trust <pipeline's>`)."""

    name: str  # "staging", "prod"
    account: str

    def __post_init__(self) -> None:
        if not (self.account.isdigit() and len(self.account) == 12):
            raise ValueError(f"{self.name}: the account id must be 12 digits")


CDK_CLI_VERSION = "2.1031.0"  # the CDK CLI the environment deploys run (`npx aws-cdk@...`)
CDK_QUALIFIER = "hnb659fds"  # the bootstrap stacks' default qualifier (their roles' names carry it)


# The deploy project checks out the repository (through the connection, like the promotion project), installs
# the lock as buildspec.yml's install phase does, and runs the deploy step on the approved package
# (`monitoring/deploy.py`: model + endpoint configuration with the platform key, then the endpoint named
# after the model created or updated; idempotent, so a retried build changes nothing twice).
VENV = ".venv"
INSTALL_COMMANDS = [
    f"test -x {VENV}/bin/python || python3 -m venv {VENV}",
    f'{VENV}/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"',
    f"{VENV}/bin/uv pip install --python {VENV}/bin/python --require-hashes --compile-bytecode"
    " -r requirements.lock",
    f"{VENV}/bin/uv pip install --python {VENV}/bin/python --no-deps -e .",
]
AUTOSCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
DEPLOY_WAIT_SECONDS = 1800  # an endpoint still updating from the previous approval is waited for
DEPLOY_COMMANDS = [
    f'{VENV}/bin/python -m monitoring.deploy --model-package-arn "$MODEL_PACKAGE_ARN"'
    ' --role-arn "$EXECUTION_ROLE_ARN" --kms-key "$KMS_KEY_ARN" --instance-type "$INSTANCE_TYPE"'
    f" --wait-seconds {DEPLOY_WAIT_SECONDS}",
]
UV_VERSION = "0.13.8"  # as buildspec.yml and the Makefile
# The delivery roles use the platform key only through S3 (artifacts, the lake, Athena results) and through
# CodeBuild/CloudWatch Logs for their encrypted projects and logs; never directly (the audit keys' unwrap
# has its own encryption-context condition).
KEY_SERVICES = ("s3", "codebuild", "logs")


class DeliveryStack(Stack):
    """CodePipeline + CodeBuild projects; everything encrypted with the platform key."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source: SourceRepository,
        key: kms.IKey,
        lake: s3.IBucket,
        access_logs: s3.IBucket,
        execution_role: iam.IRole,
        audit_table: dynamodb.ITable,
        audit_checkpoints: s3.IBucket,
        data_keys_table: dynamodb.ITable,
        endpoint_instance_type: str = "ml.m5.large",
        targets: tuple[DeployTarget, ...] = (),
        app_context: dict[str, str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._key, self._lake, self._source = key, lake, source
        self._action_roles: list[PlatformRole] = []
        role_variable = {
            "SAGEMAKER_ROLE_ARN": codebuild.BuildEnvironmentVariable(value=execution_role.role_arn)
        }
        # `cdp promote` runs as the project's IAM role: CDP_IAM_ROLE_MAP gives that role model-approver
        # the inference image (inference/Dockerfile), built and pushed by `cdk deploy`; the pipelines
        # register model packages with it (CDP_INFERENCE_IMAGE_URI) and the deploy step serves it
        self.serving_image = serving_image(self, "ServingImage")
        self.serving_image.repository.grant_pull(execution_role)
        build_role = self._gate_role("Build")
        self.build = self._project(
            "Build",
            "Pipeline build: tests, pipeline definitions and runs, then the promotion gate in post_build",
            codebuild.PipelineProject,
            role=build_role,
            environment_variables={
                **role_variable,
                **_approver_map(build_role),
                "CDP_INFERENCE_IMAGE_URI": codebuild.BuildEnvironmentVariable(
                    value=self.serving_image.image_uri
                ),
            },
        )
        _suppress_on_project(
            self.build,
            "AwsSolutions-IAM5",
            "CodePipeline's grant to its build: read the source artifact (objects named per execution).",
            applies_to=["Action::s3:GetObject*", "Action::s3:GetBucket*", "Action::s3:List*"],
        )
        suppress(
            self.build,
            "PCI.DSS.321-CodeBuildProjectSourceRepoUrl",
            "The pipeline's build reads its source from the pipeline's artifact (source type CODEPIPELINE), "
            "which the pipeline checked out through the CodeConnections connection: no repository URL and "
            "no credentials are in the project at all.",
        )
        promote_role = self._gate_role("Promote")
        self.promote = self._project(
            "Promote",
            "Promotion gate for a registered model version (started by cdp-promote-on-register)",
            codebuild.Project,
            source=codebuild.Source.git_hub(
                owner=source.owner, repo=source.name, branch_or_ref=source.branch, webhook=False
            ),
            role=promote_role,
            environment_variables={
                **role_variable,
                **_approver_map(promote_role),
                # no pipeline runs: buildspec.yml loops over $CI_PIPELINES unquoted, so a blank runs none
                # (a blank rather than "": CloudFormation rejects an empty required Value)
                "CI_PIPELINES": codebuild.BuildEnvironmentVariable(value=" "),
            },
        )
        self._use_connection(self.promote)
        self._grant_promotion(self.build)
        self._grant_promotion(self.promote)
        for project in (self.build, self.promote):  # the gate's approvals are audited
            _grant_audit(project, audit_table, audit_checkpoints, data_keys_table, key)
        self._grant_pipeline_runs(self.build, execution_role)
        self.deploy = self._project(
            "Deploy",
            "Deploys an approved model version to its endpoint (started by cdp-deploy-on-approval)",
            codebuild.Project,
            role=PlatformRole(
                self,
                "DeployRole",
                key_services=KEY_SERVICES,
                assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
                description="CodeBuild Deploy: a model's endpoint from its approved package",
            ),
            source=codebuild.Source.git_hub(
                owner=source.owner, repo=source.name, branch_or_ref=source.branch, webhook=False
            ),
            build_spec=codebuild.BuildSpec.from_object(
                {
                    "version": "0.2",
                    "env": {"shell": "bash", "variables": {"UV_VERSION": UV_VERSION}},
                    "phases": {
                        "install": {"runtime-versions": {"python": "3.11"}, "commands": INSTALL_COMMANDS},
                        "build": {"commands": DEPLOY_COMMANDS},
                    },
                }
            ),
            environment_variables={
                "EXECUTION_ROLE_ARN": codebuild.BuildEnvironmentVariable(value=execution_role.role_arn),
                "KMS_KEY_ARN": codebuild.BuildEnvironmentVariable(value=key.key_arn),
                "INSTANCE_TYPE": codebuild.BuildEnvironmentVariable(value=endpoint_instance_type),
                "CDP_AWS_REGION": codebuild.BuildEnvironmentVariable(value=self.region),
            },
        )
        self._use_connection(self.deploy)
        self._grant_deploy(self.deploy, execution_role)
        self._targets, self._app_context = targets, dict(app_context or {})
        self.pipeline = self._pipeline(access_logs)

    # -- projects -------------------------------------------------------------------------------------
    def _gate_role(self, name: str) -> iam.Role:
        """The service role of a project that runs the promotion gate (its identity: see `_approver_map`)."""
        return PlatformRole(
            self,
            f"{name}Role",
            key_services=KEY_SERVICES,
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"CodeBuild {name}: runs the promotion gate as role model-approver",
        )

    def _project(self, name: str, description: str, kind: type, **options) -> codebuild.Project:
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            encryption_key=self._key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        project = kind(
            self,
            name,
            description=description,
            environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.SMALL
            ),
            encryption_key=self._key,
            timeout=Duration.minutes(60),
            logging=codebuild.LoggingOptions(
                cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=log_group)
            ),
            **options,
        )
        _suppress_on_project(
            project,
            "AwsSolutions-IAM5",
            "CodeBuild's own grants: its log streams and report groups are named per build.",
            applies_to=[
                {"regex": "/^Resource::arn:<AWS::Partition>:logs:.*:\\*$/g"},
                {"regex": "/^Resource::arn:<AWS::Partition>:codebuild:.*:report-group\\/.*-\\*$/g"},
                {"regex": "/^Action::kms:(GenerateDataKey|ReEncrypt)\\*$/g"},
            ],
        )
        return project

    def _use_connection(self, project: codebuild.Project) -> None:
        """Check out through the connection (CodeBuild source auth CODECONNECTIONS)."""
        project.node.default_child.add_property_override(
            "Source.Auth", {"Type": "CODECONNECTIONS", "Resource": self._source.connection_arn}
        )
        suppress(
            project,
            "PCI.DSS.321-CodeBuildProjectSourceRepoUrl",
            "The project authenticates to the Git host through the CodeConnections connection (Source.Auth "
            "CODECONNECTIONS, set after the rule runs): no token or password is in the repository URL, "
            "which is what the rule guards against, and the connection is revocable in one place.",
        )
        project.add_to_role_policy(self._connection_statement())

    def _connection_statement(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(
            actions=[
                "codeconnections:UseConnection",
                "codeconnections:GetConnectionToken",
                "codestar-connections:UseConnection",
                "codestar-connections:GetConnectionToken",
            ],
            resources=[self._source.connection_arn],
        )

    def _through_s3(self) -> dict[str, dict[str, str]]:
        """A KMS condition: the key is usable only by S3 on the caller's behalf (lake objects, Athena
        results), so the grant cannot unwrap the per-customer data keys the same key protects."""
        return {"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}}

    def _registry_arn(self, resource: str) -> str:
        return f"arn:{self.partition}:sagemaker:{self.region}:{self.account}:{resource}"

    def _grant_promotion(self, project: codebuild.Project) -> None:
        """The promotion gate reads versions, their metrics and the holdout, and approves or rejects."""
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:UpdateModelPackage",
                ],
                resources=[
                    self._registry_arn("model-package-group/cdp-*"),
                    self._registry_arn("model-package/cdp-*/*"),
                ],
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"])
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:ListBucket"],
                resources=[self._lake.bucket_arn, self._lake.arn_for_objects("*")],
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[self._lake.arn_for_objects(ATHENA_RESULTS_PREFIX + "*")]
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self._key.key_arn],
                conditions=self._through_s3(),
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:GetPartitions",
                ],
                resources=[
                    f"arn:{self.partition}:athena:{self.region}:{self.account}:workgroup/{ATHENA_WORKGROUP}",
                    f"arn:{self.partition}:glue:{self.region}:{self.account}:catalog",
                    f"arn:{self.partition}:glue:{self.region}:{self.account}:database/{GLUE_DATABASE}",
                    f"arn:{self.partition}:glue:{self.region}:{self.account}:table/{GLUE_DATABASE}/*",
                ],
            )
        )
        _suppress_on_project(
            project,
            "AwsSolutions-IAM5",
            "The gate reads any version of the cdp-* groups, the lake's evaluation reports and holdout "
            "(through Athena; results under the lake's _athena-results/ prefix); "
            "sagemaker:ListModelPackages has no resource-level permission (infra.nag_rules).",
            applies_to=[
                {"regex": "/^Resource::arn:<AWS::Partition>:sagemaker:.*:model-package.*\\/cdp-\\*.*$/g"},
                {"regex": "/^Resource::.*\\/\\*$/g"},
                {"regex": "/^Resource::arn:<AWS::Partition>:glue:.*:table\\/cdp\\/\\*$/g"},
                "Resource::*",
            ],
        )

    def _grant_pipeline_runs(self, project: codebuild.Project, execution_role: iam.IRole) -> None:
        """`run-pipeline`: upload the step code to the lake, upsert and start the cdp-* pipelines."""
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreatePipeline",
                    "sagemaker:UpdatePipeline",
                    "sagemaker:DescribePipeline",
                    "sagemaker:StartPipelineExecution",
                    "sagemaker:AddTags",
                ],
                resources=[self._registry_arn("pipeline/cdp-*")],
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[self._lake.arn_for_objects("pipelines/*")]
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey"], resources=[self._key.key_arn], conditions=self._through_s3()
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        _suppress_on_project(
            project,
            "AwsSolutions-IAM5",
            "Pipelines are upserted by name (cdp-fraud, cdp-clv, cdp-segmentation); step code is uploaded "
            "under the lake's pipelines/ prefix with per-run names.",
            applies_to=[{"regex": "/^Resource::arn:<AWS::Partition>:sagemaker:.*:pipeline\\/cdp-\\*$/g"}],
        )

    def _grant_deploy(self, project: codebuild.Project, execution_role: iam.IRole) -> None:
        """Create a model and endpoint config per version (tagged), then create or update the model's
        endpoint; check out the repository (the deploy step's code) through the connection."""
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "sagemaker:CreateModel",
                    "sagemaker:DescribeModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:DescribeEndpointConfig",
                    "sagemaker:CreateEndpoint",
                    "sagemaker:UpdateEndpoint",
                    "sagemaker:DescribeEndpoint",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:AddTags",
                ],
                resources=[
                    self._registry_arn("model/cdp-*"),
                    self._registry_arn("endpoint-config/cdp-*"),
                    self._registry_arn("endpoint/cdp-*"),
                    self._registry_arn("model-package/cdp-*/*"),
                ],
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:CreateGrant", "kms:DescribeKey"],
                resources=[self._key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        self._grant_autoscaling(project)
        _suppress_on_project(
            project,
            "AwsSolutions-IAM5",
            "Models and endpoint configs are named per approved version; all are scoped to cdp-*.",
            applies_to=[{"regex": "/^Resource::arn:<AWS::Partition>:sagemaker:.*\\/cdp-\\*.*$/g"}],
        )

    def _grant_autoscaling(self, project: codebuild.Project) -> None:
        """The deploy step registers the endpoint's variant with Application Auto Scaling and puts its
        target-tracking policy (whose alarms Application Auto Scaling creates in the caller's name)."""

        def arn(service: str, resource: str) -> str:
            return f"arn:{self.partition}:{service}:{self.region}:{self.account}:{resource}"

        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "application-autoscaling:RegisterScalableTarget",
                    "application-autoscaling:PutScalingPolicy",
                    "application-autoscaling:DeleteScalingPolicy",
                    "application-autoscaling:DeregisterScalableTarget",
                ],
                resources=[arn("application-autoscaling", "scalable-target/*")],
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
                resources=[arn("cloudwatch", "alarm:TargetTracking-endpoint/cdp-*")],
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{self.partition}:iam::{self.account}:role/aws-service-role/{AUTOSCALING_SERVICE}/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
                ],
                conditions={"StringEquals": {"iam:AWSServiceName": AUTOSCALING_SERVICE}},
            )
        )
        _suppress_on_project(
            project,
            "AwsSolutions-IAM5",
            "A scalable target's ARN carries an id Application Auto Scaling assigns at registration, so "
            "the grant names the account's scalable targets; target-tracking alarms are named by the "
            "service after the endpoint (TargetTracking-endpoint/cdp-*).",
            applies_to=[
                {
                    "regex": "/^Resource::arn:<AWS::Partition>:application-autoscaling:.*:scalable-target"
                    + r"\/\*$/g"
                },
                {
                    "regex": "/^Resource::arn:<AWS::Partition>:cloudwatch:.*:alarm:TargetTracking-endpoint"
                    + r"\/cdp-\*$/g"
                },
            ],
        )

    # -- environments ---------------------------------------------------------------------------------
    def _environment_stages(self, checkout: codepipeline.Artifact) -> list[codepipeline.StageProps]:
        """Deploy to each target in order (staging, then prod); a manual approval before every target but
        the first, as the SageMaker MLOps deploy template does before production."""
        stages = []
        for position, target in enumerate(self._targets):
            deploy = []
            if position > 0:
                deploy.append(
                    actions.ManualApprovalAction(
                        action_name=f"Approve{target.name.capitalize()}",
                        additional_information=f"Deploy the platform to {target.name} ({target.account})",
                        run_order=1,
                        role=self._action_role(f"Approve{target.name.capitalize()}"),
                    )
                )
            deploy.append(
                actions.CodeBuildAction(
                    action_name=f"Deploy{target.name.capitalize()}",
                    project=self._environment_project(target),
                    input=checkout,
                    run_order=2,
                    role=self._action_role(f"Deploy{target.name.capitalize()}Action"),
                )
            )
            stages.append(codepipeline.StageProps(stage_name=f"Deploy-{target.name}", actions=deploy))
        return stages

    def _environment_project(self, target: DeployTarget) -> codebuild.PipelineProject:
        """`cdk deploy --all` into `target`'s account through its bootstrap roles (and nothing else)."""
        name = f"Deploy{target.name.capitalize()}Env"
        context = {**self._app_context, "account": target.account, ENVIRONMENT_CONTEXT: target.name}
        if target.name != PROD:  # the DR vault is prod's (infra.recovery): staging keeps its backups local
            context.pop(DR_VAULT_CONTEXT, None)
        flags = " ".join(f"-c {key}={value}" for key, value in sorted(context.items()))
        role = PlatformRole(
            self,
            f"{name}Role",
            key_services=KEY_SERVICES,
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"CodeBuild {name}: assumes the CDK bootstrap roles of {target.name} only",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeBootstrapRoles",
                actions=["sts:AssumeRole"],
                resources=[f"arn:{self.partition}:iam::{target.account}:role/cdk-{CDK_QUALIFIER}-*"],
            )
        )
        project = self._project(
            name,
            f"Deploys the platform's stacks to {target.name} ({target.account})",
            codebuild.PipelineProject,
            role=role,
            build_spec=codebuild.BuildSpec.from_object(
                {
                    "version": "0.2",
                    "env": {"shell": "bash", "variables": {"UV_VERSION": UV_VERSION}},
                    "phases": {
                        "install": {"runtime-versions": {"python": "3.11"}, "commands": INSTALL_COMMANDS},
                        "build": {
                            "commands": [
                                f"export PATH=$PWD/{VENV}/bin:$PATH",
                                f"npx --yes aws-cdk@{CDK_CLI_VERSION} deploy --all --require-approval never"
                                f" {flags}",
                            ]
                        },
                    },
                }
            ),
        )
        suppress(
            project,
            "PCI.DSS.321-CodeBuildProjectSourceRepoUrl",
            "The environment deploy reads its source from the pipeline's artifact (source type "
            "CODEPIPELINE): no repository URL and no credentials are in the project.",
        )
        _suppress_on_project(
            project,
            "AwsSolutions-IAM5",
            "cdk deploy assumes the target account's bootstrap roles (deploy, file and image publishing, "
            "lookup), all named cdk-<qualifier>-* by `cdk bootstrap`; no other role of that account. "
            "CodePipeline's grant to the project: read the source artifact (objects named per execution).",
            applies_to=[
                {"regex": "/^Resource::arn:<AWS::Partition>:iam::[0-9]{12}:role\\/cdk-.*-\\*$/g"},
                "Action::s3:GetObject*",
                "Action::s3:GetBucket*",
                "Action::s3:List*",
                {"regex": "/^Resource::.*Artifacts[0-9A-F]+\\.?Arn.*\\/\\*$/g"},
            ],
        )
        return project

    # -- pipeline -------------------------------------------------------------------------------------
    def _action_role(self, name: str) -> PlatformRole:
        """A pipeline action's role (assumed by the pipeline's role, as CodePipeline's own action roles)."""
        role = PlatformRole(
            self,
            f"{name}Role",
            key_services=KEY_SERVICES,
            assumed_by=iam.AccountRootPrincipal(),
            description=f"CodePipeline action {name}: only what that action does",
        )
        self._action_roles.append(role)
        return role

    def _pipeline(self, access_logs: s3.IBucket) -> codepipeline.Pipeline:
        artifacts = s3.Bucket(
            self,
            "Artifacts",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self._key,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="artifacts/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        checkout = codepipeline.Artifact("Source")
        pipeline = codepipeline.Pipeline(
            self,
            "Pipeline",
            pipeline_type=codepipeline.PipelineType.V2,
            role=PlatformRole(
                self,
                "PipelineRole",
                key_services=KEY_SERVICES,
                assumed_by=iam.ServicePrincipal("codepipeline.amazonaws.com"),
                description="CodePipeline: artifacts and assuming its actions' roles",
            ),
            artifact_bucket=artifacts,
            restart_execution_on_update=True,
            stages=[
                codepipeline.StageProps(
                    stage_name="Source",
                    actions=[
                        actions.CodeStarConnectionsSourceAction(
                            action_name="Checkout",
                            connection_arn=self._source.connection_arn,
                            owner=self._source.owner,
                            repo=self._source.name,
                            branch=self._source.branch,
                            output=checkout,
                            role=self._action_role("Checkout"),
                        )
                    ],
                ),
                codepipeline.StageProps(
                    stage_name="Build",
                    actions=[
                        actions.CodeBuildAction(
                            action_name="Build",
                            project=self.build,
                            input=checkout,
                            role=self._action_role("BuildAction"),
                        )
                    ],
                ),
                *self._environment_stages(checkout),
            ],
        )
        suppress_no_replication(artifacts)
        for construct in (pipeline, pipeline.role, *self._action_roles):
            suppress(
                construct,
                "AwsSolutions-IAM5",
                "CodePipeline's own grants on its artifact bucket (objects are named per execution) and the "
                "platform key's data-key operations.",
                applies_to=[
                    {"regex": "/^Action::s3:.*\\*$/g"},
                    {"regex": "/^Resource::.*\\/\\*$/g"},
                    {"regex": "/^Action::kms:(GenerateDataKey|ReEncrypt)\\*$/g"},
                ],
            )
        return pipeline


def _grant_audit(
    project: codebuild.Project, audit_table: dynamodb.ITable, checkpoints: s3.IBucket,
    data_keys: dynamodb.ITable, key: kms.IKey,
) -> None:  # fmt: skip
    """The gate's approvals are audited: append, checkpoints and the audit keys (`infra.audit_grants`)."""
    grant_audit(project, AuditResources(audit_table, checkpoints, data_keys, key))
    _suppress_on_project(
        project, "AwsSolutions-IAM5", CHECKPOINT_OBJECTS_REASON, applies_to=[CHECKPOINT_OBJECTS_FINDING]
    )


def _approver_map(role: iam.IRole) -> dict[str, codebuild.BuildEnvironmentVariable]:
    """`CDP_IAM_ROLE_MAP` giving `role` the platform role model-approver (the gate's identity in AWS)."""
    value = Fn.join("", ['{"', role.role_arn, '": ["model-approver"]}'])
    return {"CDP_IAM_ROLE_MAP": codebuild.BuildEnvironmentVariable(value=value)}


def _suppress_on_project(project: codebuild.Project, *args: object, **kwargs: object) -> None:
    """`suppress` on a CodeBuild project and on its service role (given explicitly, it is not a child)."""
    suppress(project, *args, **kwargs)  # type: ignore[arg-type]
    if project.role is not None:
        suppress(project.role, *args, **kwargs)  # type: ignore[arg-type]
