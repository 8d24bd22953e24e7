"""The public API: an API Gateway HTTP API (payload v2, what `inference.lambda_handler`'s Mangum adapter
reads) with one route per public operation of the app's OpenAPI document, all to the API Lambda.

Throttling: the stage limits every route (`THROTTLE_RATE_PER_SECOND`, `THROTTLE_BURST`); per-client quotas
are the app's own (API keys verified and rate-limited per key by `inference.auth` / `inference.ratelimit`;
HTTP APIs have no usage plans). Access logs carry request metadata only: the route template, not the path
(a path holds a customer token), and no source IP or user agent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from constructs import Construct

from cdp.aws_resources import (
    API_KEYS_TABLE,
    MODEL_REGISTRY_PREFIX,
    NOTICE_REPLIES_TABLE,
    ONLINE_FEATURES_TABLE,
)
from cdp.feedback.replies import FRAUD_FEEDBACK
from infra.nag_rules import suppress
from infra.network import PrivateNetwork
from infra.runtime_access import RuntimeAccess
from infra.stream_functions import function_log_group, private_function

API_HANDLER = "inference.lambda_handler.handler"
PUBLIC_ROUTES: dict[str, tuple[str, ...]] = {
    "/v1/fraud/score": ("POST",),
    "/v1/fraud/score:batch": ("POST",),
    "/v1/customers/{token}/profile": ("GET",),
    "/v1/models": ("GET",),
    "/v1/models/reload": ("POST",),
    "/v1/notices/reply": ("POST",),
}
"""The app's public operations (its OpenAPI document's `/v1/` paths; a test keeps them equal)."""

THROTTLE_RATE_PER_SECOND = 200
THROTTLE_BURST = 400
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "time": "$context.requestTimeEpoch",
    "method": "$context.httpMethod",
    "route": "$context.routeKey",
    "status": "$context.status",
    "latencyMs": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus",
    "responseLength": "$context.responseLength",
}
"""Access log fields: no `$context.path`, source IP, user agent or identity (no personal data)."""


class PublicApi(Construct):
    """HTTP API -> API Lambda, throttled, access-logged."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: PrivateNetwork,
        access: RuntimeAccess,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = private_function(
            self,
            "Handler",
            handler=API_HANDLER,
            description="CDP public API (FastAPI through Mangum)",
            network=network,
            access=access,
            environment=environment,
            memory_mb=2048,
            timeout=Duration.seconds(29),
        )
        for statement in (
            access.tables(
                "ApiKeys", [API_KEYS_TABLE], ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"]
            ),
            access.tables(
                "OnlineState", [ONLINE_FEATURES_TABLE], ["dynamodb:GetItem", "dynamodb:BatchGetItem"]
            ),
            # the reply store's item actions (`cdp.feedback.dynamodb`): `POST /v1/notices/reply` reads a
            # code and answers it once by a conditional update; issuing codes (a Put + Update transaction)
            # is the notifier's, not the API's
            access.tables(
                "NoticeReplies", [NOTICE_REPLIES_TABLE], ["dynamodb:GetItem", "dynamodb:UpdateItem"]
            ),
            *access.registry_read(),
            *access.lake_read([f"{MODEL_REGISTRY_PREFIX}/", "customer_features/"], sid="ModelsAndProfiles"),
            access.lake_write([f"{FRAUD_FEEDBACK.name}/"], sid="ReplyLabels"),  # the answers' labels
            access.key_via(["s3", "dynamodb"], actions=("kms:Decrypt", "kms:GenerateDataKey")),
            access.metrics(),
        ):
            self.function.add_to_role_policy(statement)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name="cdp-public",
            description="CDP public API",
            create_default_stage=False,
        )
        integration = integrations.HttpLambdaIntegration(
            "Lambda", self.function, payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0
        )
        for path, methods in PUBLIC_ROUTES.items():
            self.api.add_routes(
                path=path, methods=[apigwv2.HttpMethod(m) for m in methods], integration=integration
            )
        self.access_logs = function_log_group(self, "AccessLogs", access.key)
        self.stage = apigwv2.CfnStage(
            self,
            "Stage",
            api_id=self.api.api_id,
            stage_name="$default",
            auto_deploy=True,
            access_log_settings=apigwv2.CfnStage.AccessLogSettingsProperty(
                destination_arn=self.access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
            ),
            default_route_settings=apigwv2.CfnStage.RouteSettingsProperty(
                throttling_rate_limit=THROTTLE_RATE_PER_SECOND,
                throttling_burst_limit=THROTTLE_BURST,
                detailed_metrics_enabled=True,
            ),
        )
        suppress(
            self.api,
            "AwsSolutions-APIG4",
            "Every protected route is authorised by the app itself on each request (inference.auth: hashed "
            "API keys with roles, or bearer tokens; refusals are 401/403 before any data is read), the same "
            "code the API's tests cover; an API Gateway authorizer would duplicate that check.",
        )
        self.url = self.api.api_endpoint
