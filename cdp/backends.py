"""The one place that picks an adapter for every port, from `settings.backend`.

Business code asks a `Backends` object for ports (`backends.object_store`, `backends.stream`, ...) and
never learns which adapter it got. Adapters are built lazily, once per `Backends`, so a command that needs
only the catalog never imports boto3 or opens the stream log.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from cdp.filemodes import make_private
from cdp.settings import Settings, get_settings

if TYPE_CHECKING:
    from cdp.apikeys.port import ApiKeyStore
    from cdp.catalog.port import Catalog
    from cdp.corebanking.erasure_requests import ErasureRequests
    from cdp.events.port import EventBus
    from cdp.metrics.port import MetricsStore
    from cdp.objectstore.port import ObjectStore
    from cdp.oltp.port import OltpStore
    from cdp.online.port import OnlineStore
    from cdp.registry.port import ModelRegistry
    from cdp.security.audit.checkpoint import AuditCheckpoints
    from cdp.security.audit.port import AuditLog
    from cdp.security.cardverify.port import CardVerifier
    from cdp.security.datakeys.port import DataKeyStore
    from cdp.security.identity.port import IdentityProvider
    from cdp.security.keys.port import KeyManager
    from cdp.security.protector import Protector
    from cdp.security.vault import PiiVault
    from cdp.stream.port import EventStream


class Backends:
    """Ports wired to the local (embedded) or AWS adapters according to the settings."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.aws = self.settings.backend == "aws"
        make_private(self.settings)

    def _boto(self, service: str):  # noqa: ANN202 - a boto3 client
        import boto3

        return boto3.client(service, region_name=self.settings.aws_region)

    # -- storage ------------------------------------------------------------------------------------
    @cached_property
    def object_store(self) -> ObjectStore:
        if self.aws:
            from cdp.objectstore.s3 import S3ObjectStore

            return S3ObjectStore.from_settings(self.settings)
        from cdp.objectstore.local import FolderObjectStore

        return FolderObjectStore.from_settings(self.settings)

    @cached_property
    def catalog(self) -> Catalog:
        from cdp.catalog.port import AnalystLimits

        if self.aws:
            from cdp.catalog.athena import GlueAthenaCatalog

            return GlueAthenaCatalog(
                self._boto("glue"),
                self._boto("athena"),
                database="cdp",
                output_location=f"s3://{self.settings.lake_bucket}/_athena-results/",
                analyst_workgroup=self.settings.athena_analyst_workgroup,
                analyst_limits=AnalystLimits.from_settings(self.settings),
            )
        from cdp.catalog.local import DuckDbCatalog

        return DuckDbCatalog(
            self.settings.state_dir / "catalog.json",
            resolve=self.object_store.local_path,
            analyst_limits=AnalystLimits.from_settings(self.settings),
        )

    @cached_property
    def oltp(self) -> OltpStore:
        if self.aws:
            from cdp.oltp import dynamodb

            return dynamodb.from_settings(self.settings)
        from cdp.oltp import sqlite

        return sqlite.from_settings(self.settings)

    @cached_property
    def stream(self) -> EventStream:
        if self.aws:
            from cdp.stream.kinesis import KinesisStream

            return KinesisStream.from_settings(self.settings)
        from cdp.stream.local import SqliteStreamLog

        return SqliteStreamLog.from_settings(self.settings)

    @cached_property
    def online_store(self) -> OnlineStore:
        from cdp.online import online_store

        return online_store(self.settings)

    @cached_property
    def api_keys(self) -> ApiKeyStore:
        """The public API's key store (hashed keys with scopes)."""
        if self.aws:
            from cdp.apikeys.dynamodb import DynamoDbApiKeyStore

            return DynamoDbApiKeyStore.from_settings(self.settings)
        from cdp.apikeys.sqlite import SqliteApiKeyStore

        return SqliteApiKeyStore.from_settings(self.settings)

    @cached_property
    def model_registry(self) -> ModelRegistry:
        """MLflow locally, SageMaker on AWS; both audit to `audit`, opened by a decision only (reading the
        registry must not open the audit store). The local registry reads `s3://` model
        prefixes through `object_store`; the AWS registry writes its artifacts through it."""
        if self.aws:
            from cdp.registry.sagemaker_registry import SageMakerModelRegistry

            return SageMakerModelRegistry.from_settings(
                self.settings, audit=lambda: self.audit, object_store=self.object_store
            )
        from cdp.registry.mlflow_registry import MlflowModelRegistry

        return MlflowModelRegistry.from_settings(
            self.settings, audit=lambda: self.audit, object_store=self.object_store
        )

    # -- monitoring -----------------------------------------------------------------------------------
    @cached_property
    def metrics(self) -> MetricsStore:
        if self.aws:
            from cdp.metrics.cloudwatch import CloudWatchMetricsStore

            return CloudWatchMetricsStore.from_settings(self.settings)
        from cdp.metrics.local import SqliteMetricsStore

        return SqliteMetricsStore.from_settings(self.settings)

    @cached_property
    def event_bus(self) -> EventBus:
        if self.aws:
            from cdp.events.eventbridge import EventBridgeBus

            return EventBridgeBus.from_settings(self.settings, bus_name=self.settings.event_bus_name)
        from cdp.events.local import SqliteEventBus

        return SqliteEventBus.from_settings(self.settings)

    # -- security -----------------------------------------------------------------------------------
    @cached_property
    def keys(self) -> KeyManager:
        if self.aws:
            from cdp.security.keys import kms

            return kms.from_settings(self.settings)
        from cdp.security.keys import local

        return local.from_settings(self.settings)

    @cached_property
    def data_keys(self) -> DataKeyStore:
        if self.aws:
            from cdp.security.datakeys import dynamodb

            return dynamodb.from_settings(self.settings)
        from cdp.security.datakeys import sqlite

        return sqlite.from_settings(self.settings)

    @cached_property
    def audit(self) -> AuditLog:
        # The application-level, MAC-chained audit log is kept in both modes (CloudTrail records the
        # AWS API calls beside it; it cannot tell which customer a decrypt was for). Its keys come from the
        # key manager; its signed checkpoints go to `audit_checkpoints`, apart from the log.
        from cdp.security.audit.keys import AuditKeys, load_audit_keys
        from cdp.security.audit.sqlite import SqliteAuditLog

        def keys() -> AuditKeys:  # loaded on first use: building the log reaches no key service
            return load_audit_keys(self.keys, self.data_keys)

        return SqliteAuditLog(self.settings.state_dir / "audit.sqlite", keys, self.audit_checkpoints)

    @cached_property
    def audit_checkpoints(self) -> AuditCheckpoints:
        if self.aws:
            from cdp.security.audit.checkpoints_s3 import S3Checkpoints

            return S3Checkpoints.from_settings(self.settings)
        from cdp.security.audit.checkpoints_local import LocalCheckpointFile

        return LocalCheckpointFile(self.settings.state_dir / "audit-checkpoints.jsonl")

    @cached_property
    def protector(self) -> Protector:
        from cdp.security.protector import Protector
        from cdp.security.tokens import load_or_create_token_key

        token_key = load_or_create_token_key(self.keys, self.data_keys)
        return Protector(token_key, self.keys, self.data_keys)

    @cached_property
    def card_verifier(self) -> CardVerifier:
        if self.aws:
            from cdp.security.cardverify.aws import PaymentCryptographyVerifier

            return PaymentCryptographyVerifier.from_settings(self.settings)
        from cdp.security.cardverify.local import SoftwareHsm

        return SoftwareHsm.from_keys(self.keys, self.data_keys)

    @cached_property
    def vault(self) -> PiiVault:
        from cdp.security.vault import PiiVault

        return PiiVault(self.keys, self.data_keys, self.audit)

    @cached_property
    def identity(self) -> IdentityProvider:
        """Who is calling: the IAM principal in AWS, a signed identity token here."""
        if self.aws:
            from cdp.security.identity.aws import IamIdentityProvider

            return IamIdentityProvider(self._boto("sts"), self.settings.iam_role_map)
        from cdp.security.identity.local import LocalIdentityProvider
        from cdp.security.identity.register import SqliteIdentityRegister
        from cdp.security.identity.token import load_signing_key

        return LocalIdentityProvider(
            SqliteIdentityRegister(self.settings.state_dir / "identities.sqlite"),
            lambda: load_signing_key(self.keys, self.data_keys),
            self.settings.identity_file,
            self.settings.identities_dir,
        )

    @cached_property
    def erasure_requests(self) -> ErasureRequests:
        """Pending two-person erasure requests (SQLite here, DynamoDB in AWS)."""
        if self.aws:
            from cdp.corebanking.erasure_requests import DynamoDbErasureRequests

            return DynamoDbErasureRequests.from_settings(self.settings)
        from cdp.corebanking.erasure_requests import SqliteErasureRequests

        return SqliteErasureRequests(self.settings.state_dir / "erasure_requests.sqlite")
